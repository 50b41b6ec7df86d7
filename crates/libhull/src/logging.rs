//! Logging: tracing output written where `--log` says, as text or as runc's JSON lines
//! (`{"level":"error","msg":...,"time":...}`) that containerd and podman parse.
