//! `process.terminal` with `--console-socket`: the runtime sends the pty master over the
//! socket, and the process talks through it; the flag combinations that cannot work are
//! refused.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::{runtime_name, Pending, Test};

/// Waits for the runtime to connect to `listener`, failing early with the call's output if it
/// finished without connecting.
fn accept(listener: &UnixListener, call: Pending) -> (UnixStream, Pending) {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return (s, call);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("accept on the console socket: {e}"),
        }
        if Instant::now() > deadline {
            panic!("nobody connected to the console socket:\n{}", call.wait());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Receives one message: the name in its data and every fd passed with SCM_RIGHTS.
fn recv_fds(stream: &UnixStream) -> (String, Vec<OwnedFd>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut name = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: name.as_mut_ptr().cast(),
        iov_len: name.len(),
    };
    // Room for several fds, so that a runtime sending more than one is caught.
    const MAX_FDS: usize = 8;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE((MAX_FDS * size_of::<RawFd>()) as u32) } as usize;
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: msg points at iov and control, which outlive the call and are as large as the
    // header says.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(n >= 0, "recvmsg: {}", io::Error::last_os_error());
    assert_eq!(
        msg.msg_flags & libc::MSG_CTRUNC,
        0,
        "control data truncated"
    );
    let mut fds = Vec::new();
    // SAFETY: msg was filled in by recvmsg; its control buffer is live.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR only return headers that lie within msg_controllen.
        let hdr = unsafe { cmsg.read_unaligned() };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN only computes a size.
            let header = unsafe { libc::CMSG_LEN(0) } as usize;
            let count = (hdr.cmsg_len as usize - header) / size_of::<RawFd>();
            // SAFETY: cmsg is a valid header; its payload follows it in the buffer.
            let data = unsafe { libc::CMSG_DATA(cmsg) }.cast::<RawFd>();
            for i in 0..count {
                // SAFETY: i < count, so the offset stays within this payload.
                let at = unsafe { data.add(i) };
                // SAFETY: `at` points at one fd number of the payload (maybe unaligned).
                let fd = unsafe { at.read_unaligned() };
                // SAFETY: the kernel installed this fd in our table for us; nothing else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR; cmsg is a header of this message.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    let name = String::from_utf8_lossy(&name[..n as usize])
        .trim_end_matches('\0')
        .to_string();
    (name, fds)
}

fn write_all(fd: &OwnedFd, data: &[u8]) {
    let mut done = 0;
    while done < data.len() {
        // SAFETY: writes from a live slice into an fd we own.
        let n = unsafe {
            libc::write(
                fd.as_raw_fd(),
                data[done..].as_ptr().cast(),
                data.len() - done,
            )
        };
        assert!(
            n > 0,
            "write to the pty master: {}",
            io::Error::last_os_error()
        );
        done += n as usize;
    }
}

/// Reads the master until the slave side is gone (EIO) or `timeout` passes.
fn read_until_hangup(fd: &OwnedFd, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd that lives across the call.
        let r = unsafe { libc::poll(&mut pfd, 1, 100) };
        if r <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: reads into a live buffer of the given size.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    String::from_utf8_lossy(&out).into_owned()
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
