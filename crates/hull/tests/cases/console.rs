//! `process.terminal` with `--console-socket`: the runtime sends the pty master over the
//! socket, and the process talks through it; the flag combinations that cannot work are
//! refused.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::util::{
    console_accept as accept, pty_read_while, pty_write as write_all, recv_fds, runtime_name, Test,
};

/// Reads the master until the slave side is gone (EIO) or `timeout` passes.
fn read_until_hangup(fd: &OwnedFd, timeout: Duration) -> String {
    pty_read_while(fd, timeout, |_| true)
}

fn create_args<'a>(t: &'a Test, socket: &'a str, pid_file: &'a str) -> Vec<&'a str> {
    vec![
        "create",
        "--console-socket",
        socket,
        "--pid-file",
        pid_file,
        t.id.as_str(),
    ]
}

#[test]
fn console_socket_receives_the_pty_master_and_the_process_uses_it() {
    let mut t = Test::new("console_socket");
    t.config["process"]["terminal"] = json!(true);
    t.config["process"]["consoleSize"] = json!({ "height": 30, "width": 100 });
    t.args(&["sh"]);
    t.write_config();
    let socket = t.path("console.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let socket = socket.to_string_lossy().into_owned();
    let pid_file = t.path("init.pid").to_string_lossy().into_owned();
    let id = t.id.clone();

    let mut args = create_args(&t, &socket, &pid_file);
    let bundle = t.bundle_str();
    args.extend(["--bundle", &bundle]);
    let call = t.spawn_call(&args);
    let (stream, call) = accept(&listener, call);
    let (name, mut fds) = recv_fds(&stream);
    let out = call.wait();
    out.ok();
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    t.track_pid(pid);
    assert_eq!(fds.len(), 1, "expected exactly one fd, got {}", fds.len());
    assert!(!name.is_empty(), "the fd came without a name");
    let master = fds.pop().unwrap();

    t.hull(&["start", &id]).ok();
    write_all(
        &master,
        b"stty size; echo hi-from-tty-$((6*7)); tty; exit 3\n",
    );
    let text = read_until_hangup(&master, Duration::from_secs(5));
    // The arithmetic proves that the shell ran the line, not just that the tty echoed it.
    assert!(text.contains("hi-from-tty-42"), "{text:?}");
    // The receiver gets a terminal as the kernel makes it (runc clears ONLCR only on the pty
    // its own foreground relay receives): the shim's line endings stay \r\n.
    assert!(
        text.contains("hi-from-tty-42\r\n"),
        "ONLCR was cleared: {text:?}"
    );
    assert!(text.contains("30 100"), "consoleSize not applied: {text:?}");
    assert!(
        text.contains("/dev/console") || text.contains("/dev/pts/0"),
        "tty is not the console: {text:?}"
    );
    assert_eq!(
        t.wait_status(&id, "stopped", Duration::from_secs(5)),
        "stopped"
    );
    t.hull(&["delete", &id]).ok();
}

#[test]
fn terminal_without_console_socket_is_refused_by_create() {
    let mut t = Test::new("console_no_socket");
    t.config["process"]["terminal"] = json!(true);
    t.args(&["sh"]);
    t.create_fails().0.stderr_has(&format!(
        "cannot allocate tty if {} will detach without setting console socket",
        runtime_name()
    ));
}

#[test]
fn console_socket_without_terminal_is_refused() {
    let mut t = Test::new("console_no_terminal");
    t.args(&["true"]);
    t.write_config();
    let socket = t.path("console.sock");
    let _listener = UnixListener::bind(&socket).unwrap();
    let socket = socket.to_string_lossy().into_owned();
    let bundle = t.bundle_str();
    let out = t.hull(&[
        "create",
        "--bundle",
        &bundle,
        "--console-socket",
        &socket,
        &t.id,
    ]);
    out.fails().stderr_has(&format!(
        "cannot use console socket if {} will not detach or allocate tty",
        runtime_name()
    ));
    t.assert_nothing_left(&t.id);
}

#[test]
fn console_socket_that_nobody_listens_on_fails_create_and_leaves_nothing() {
    let mut t = Test::new("console_dead_socket");
    t.config["process"]["terminal"] = json!(true);
    t.args(&["sh"]);
    t.write_config();
    let socket = t.path("nobody.sock");
    assert!(!Path::new(&socket).exists());
    let bundle = t.bundle_str();
    let out = t.hull(&[
        "create",
        "--bundle",
        &bundle,
        "--console-socket",
        &socket.to_string_lossy(),
        &t.id,
    ]);
    out.fails();
    t.assert_nothing_left(&t.id);
}
