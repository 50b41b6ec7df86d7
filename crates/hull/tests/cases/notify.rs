//! `NOTIFY_SOCKET` (systemd's readiness protocol through the runtime, as runc does it): the
//! container gets `/run/notify/notify.sock` and `NOTIFY_SOCKET` naming it; the command that
//! starts the container returns only once the container wrote `READY=` there, or died, and
//! passes `READY=1` with `MAINPID=` on to the caller's socket (the init, or a foreground
//! `run` itself).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::util::{send_ready, wait_until, Call, Test, HOST_ROOT};

/// The caller's notify socket: every datagram it gets, as they come (a reader that takes
/// them at once, as systemd does: hull waits for that after `BARRIER=1`).
struct Caller {
    rx: std::sync::mpsc::Receiver<String>,
}

impl Caller {
    fn bind(path: &std::path::Path) -> Caller {
        let sock = UnixDatagram::bind(path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = sock.recv(&mut buf) {
                if tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
                {
                    break;
                }
            }
        });
        Caller { rx }
    }
}

/// The test's container with the host's / at /host (read-only), running `script`, and the
/// caller's socket, bound in the test's directory.
fn setup(name: &str, script: &str) -> (Test, Caller, Call) {
    let mut t = Test::new(name);
    t.mount(HOST_ROOT.clone());
    t.sh(script);
    t.write_config();
    let path = t.dir.join("host-notify.sock");
    let host = Caller::bind(&path);
    let call = Call {
        env: vec![("NOTIFY_SOCKET".into(), path.to_string_lossy().into_owned())],
        timeout: Some(Duration::from_secs(60)),
        ..Call::default()
    };
    (t, host, call)
}

/// What the caller got within a short while: `READY=1…` then `BARRIER=1`, as one string.
fn received(host: &Caller) -> Option<String> {
    let first = host.rx.recv_timeout(Duration::from_millis(200)).ok()?;
    let barrier = host.rx.recv_timeout(Duration::from_secs(5)).ok();
    assert_eq!(barrier.as_deref(), Some("BARRIER=1"), "after {first:?}");
    Some(first)
}

#[test]
fn run_detached_waits_for_ready_and_names_the_init_as_main_pid() {
    let script = format!(
        "echo sock=$NOTIFY_SOCKET; while [ ! -e /go ]; do sleep 0.1; done; {}; sleep 1000",
        send_ready("STATUS=warming\\nREADY=1")
    );
    let (t, host, call) = setup("notify_run_d", &script);
    let id = t.id.clone();
    let mut pending = t.spawn_with(&["run", "-d", "--bundle", &t.bundle_str(), &id], &call);
    t.wait_status(&id, "running", Duration::from_secs(30));
    // Running, not ready: the call waits and the caller has heard nothing.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        pending.running(),
        "run -d returned before the container was ready"
    );
    assert_eq!(received(&host), None);
    std::fs::write(t.rootfs.join("go"), "").unwrap();
    let out = pending.wait();
    out.ok();
    let pid = t.state(&id).expect("state")["pid"].as_i64().unwrap();
    assert_eq!(
        received(&host).as_deref(),
        Some(format!("READY=1\nMAINPID={pid}\n").as_str()),
        "{out}"
    );
    assert!(
        out.stdout_now().contains("sock=/run/notify/notify.sock"),
        "the container's NOTIFY_SOCKET: {out}"
    );
    t.hull(&["delete", "--force", &id]).ok();
}

#[test]
fn create_then_start_waits_for_ready_and_a_container_that_dies_ends_the_wait() {
    let (mut t, host, call) = setup("notify_start", &send_ready("READY=1"));
    t.args(&[
        "sh",
        "-c",
        &format!("{}; sleep 1000", send_ready("READY=1")),
    ]);
    t.write_config();
    let id = t.id.clone();
    let b = t.bundle_str();
    t.call(&["create", "--bundle", &b, &id], &call).ok();
    assert_eq!(received(&host), None, "nothing before start");
    // `start` has no NOTIFY_SOCKET of its own: create's is the one told.
    t.hull(&["start", &id]).ok();
    let pid = t.state(&id).expect("state")["pid"].as_i64().unwrap();
    assert_eq!(
        received(&host).as_deref(),
        Some(format!("READY=1\nMAINPID={pid}\n").as_str())
    );
    t.hull(&["delete", "--force", &id]).ok();

    // A container that exits without a word: `run -d` returns, nothing is sent.
    let id2 = t.new_id();
    t.args(&["true"]);
    t.write_config();
    t.call(&["run", "-d", "--bundle", &b, &id2], &call).ok();
    assert_eq!(received(&host), None);
    assert!(wait_until(Duration::from_secs(10), || t.status(&id2) == "stopped"));
    t.hull(&["delete", &id2]).ok();
}

#[test]
fn foreground_run_names_itself_as_main_pid() {
    let script = format!("{}; exit 3", send_ready("READY=1"));
    let (t, host, call) = setup("notify_fg", &script);
    let id = t.id.clone();
    let pending = t.spawn_with(&["run", "--bundle", &t.bundle_str(), &id], &call);
    let hull_pid = pending.pid();
    let out = pending.wait();
    assert_eq!(out.code, 3, "{out}");
    assert_eq!(
        received(&host).as_deref(),
        Some(format!("READY=1\nMAINPID={hull_pid}\n").as_str()),
        "{out}"
    );
}
