//! Handing a notify listener to the agent at `listenerPath`, with the container's state.

use super::*;

/// The container process state the runtime-spec has the runtime send to `listenerPath`.
#[derive(Serialize)]
struct ProcessState<'a, S> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a str,
    fds: [&'a str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a str>,
    state: &'a S,
}

/// Sends the notify listener and the container process state to `linux.seccomp.listenerPath`,
/// as the runtime-spec says: one connection to the AF_UNIX stream socket, the JSON
/// `{ociVersion, fds: ["seccompFd"], pid, metadata, state}` as payload, the listener as the
/// only SCM_RIGHTS fd of the first message; then the connection is closed. `metadata` is
/// `linux.seccomp.listenerMetadata`, `state` the container's state object.
pub fn send_listener<S: Serialize>(
    path: &Path,
    fd: BorrowedFd<'_>,
    pid: i32,
    metadata: Option<&str>,
    state: &S,
) -> Result<(), SeccompError> {
    let fail = |step: &'static str| {
        move |source: std::io::Error| SeccompError::Listener {
            path: path.to_path_buf(),
            step,
            source,
        }
    };
    let msg = serde_json::to_vec(&ProcessState {
        oci_version: crate::spec::OCI_VERSION,
        fds: [SECCOMP_FD_NAME],
        pid,
        metadata,
        state,
    })
    .map_err(|e| fail("encode the container process state")(e.into()))?;
    let stream = UnixStream::connect(path).map_err(|source| SeccompError::AgentConnect {
        path: path.to_path_buf(),
        source,
    })?;
    let sent = hull_sys::fdpass::send_fd(stream.as_fd(), &msg, fd)
        .map_err(|e| fail("send the listener")(e.into()))?;
    let mut rest = &msg[sent..];
    while !rest.is_empty() {
        match send(stream.as_raw_fd(), rest, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => rest = &rest[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(fail("send the container process state")(e.into())),
        }
    }
    Ok(())
}
