//! The command line: runc 1.3's global flags, subcommands and their flags, as one clap table.
//! Help text, argv normalization (see `argv`) and parsing all come from these structs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hull",
    about = "An OCI container runtime, a drop-in replacement for runc",
    disable_version_flag = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,

    #[command(subcommand)]
    pub command: Option<Command>,
}

// The global flags, before the subcommand. (Not a doc comment: it would become the about
// text of the table built from it.)
#[derive(Debug, Args)]
pub struct Globals {
    /// Enable debug logging
    #[arg(long)]
    pub debug: bool,

    /// Set the log file to write hull logs to (default is '/dev/stderr')
    #[arg(long, value_name = "PATH")]
    pub log: Option<PathBuf>,

    /// Set the log format ('text' (default), or 'json')
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: String,

    /// Root directory for storage of container state (this should be located in tmpfs)
    /// [default: /run/hull, or $XDG_RUNTIME_DIR/hull when not root]
    #[arg(long, value_name = "PATH")]
    pub root: Option<PathBuf>,

    /// Path to the criu binary (ignored, as by runc 1.2 and later: criu is found on PATH)
    #[arg(long, value_name = "PATH")]
    pub criu: Option<String>,

    /// Enable systemd cgroup support, expects cgroupsPath to be of form "slice:prefix:name"
    #[arg(long)]
    pub systemd_cgroup: bool,

    /// Ignore cgroup permission errors ('true', 'false', or 'auto')
    #[arg(long, value_name = "BOOL", default_value = "auto")]
    pub rootless: String,

    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
}

impl Cli {
    /// The root of the table: the global flags without any subcommand.
    pub fn globals_table() -> clap::Command {
        Globals::augment_args(clap::Command::new("hull").disable_version_flag(true))
    }

    /// The table of a command line naming the subcommand `name`: `globals` (the
    /// [`Cli::globals_table`]) and that one subcommand, which parses a valid command line as
    /// [`Cli::command`] does without building the other sixteen (a third of a millisecond of
    /// every call). None for a name that is no subcommand. Help and errors come from the
    /// whole table.
    pub fn table_for(globals: clap::Command, name: &str) -> Option<clap::Command> {
        type Augment = fn(clap::Command) -> clap::Command;
        let (name, augment): (&'static str, Augment) = match name {
            "checkpoint" => ("checkpoint", CheckpointArgs::augment_args),
            "create" => ("create", CreateArgs::augment_args),
            "delete" => ("delete", DeleteArgs::augment_args),
            "events" => ("events", EventsArgs::augment_args),
            "exec" => ("exec", ExecArgs::augment_args),
            "kill" => ("kill", KillArgs::augment_args),
            "list" => ("list", ListArgs::augment_args),
            "ps" => ("ps", PsArgs::augment_args),
            "restore" => ("restore", RestoreArgs::augment_args),
            "run" => ("run", RunArgs::augment_args),
            "spec" => ("spec", SpecArgs::augment_args),
            "update" => ("update", UpdateArgs::augment_args),
            "pause" => ("pause", IdArg::augment_args),
            "resume" => ("resume", IdArg::augment_args),
            "start" => ("start", IdArg::augment_args),
            "state" => ("state", IdArg::augment_args),
            "features" => ("features", |c| c),
            _ => return None,
        };
        let sub = augment(clap::Command::new(name));
        Some(globals.subcommand(sub))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Checkpoint a running container
    Checkpoint(CheckpointArgs),
    /// Create a container
    Create(CreateArgs),
    /// Delete any resources held by the container
    Delete(DeleteArgs),
    /// Display container events such as OOM notifications, cpu, memory, and IO usage statistics
    Events(EventsArgs),
    /// Execute new process inside the container
    Exec(ExecArgs),
    /// Send the specified signal (default: SIGTERM) to the container's init process
    Kill(KillArgs),
    /// List containers started by hull with the given root
    List(ListArgs),
    /// Suspend all processes inside the container
    Pause(IdArg),
    /// Display the processes running inside a container
    Ps(PsArgs),
    /// Restore a container from a previous checkpoint
    Restore(RestoreArgs),
    /// Resume all processes that have been previously paused
    Resume(IdArg),
    /// Create and run a container
    Run(RunArgs),
    /// Create a new specification file
    Spec(SpecArgs),
    /// Execute the user defined process in a created container
    Start(IdArg),
    /// Output the state of a container
    State(IdArg),
    /// Update container resource constraints
    Update(UpdateArgs),
    /// Show the enabled features
    Features,
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// The container id
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Path to the root of the bundle directory, defaults to the current directory
    #[arg(short, long, value_name = "PATH", default_value = ".")]
    pub bundle: PathBuf,

    /// Path to an AF_UNIX socket which will receive a file descriptor referencing the master
    /// end of the console's pseudoterminal
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,

    /// Path to an AF_UNIX socket which will receive a file descriptor referencing the init
    /// process
    #[arg(long, value_name = "PATH")]
    pub pidfd_socket: Option<PathBuf>,

    /// Specify the file to write the process id to
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,

    /// Do not use pivot root to jail process inside rootfs (for a rootfs on a ramdisk)
    #[arg(long)]
    pub no_pivot: bool,

    /// Do not create a new session keyring for the container
    #[arg(long)]
    pub no_new_keyring: bool,

    /// Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,

    /// The container id
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,

    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,

    /// Do not delete the container after it exits
    #[arg(long)]
    pub keep: bool,

    /// Disable the use of the subreaper used to reap reparented processes
    #[arg(long)]
    pub no_subreaper: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Forcibly delete the container if it is still running (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,

    /// The container id
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Send the signal to all processes inside the container
    #[arg(short, long)]
    pub all: bool,

    /// The container id
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,

    /// A signal number, or a name with or without SIG (default: SIGTERM)
    #[arg(value_name = "SIGNAL", allow_hyphen_values = true)]
    pub signal: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Select one of: table or json
    #[arg(short, long, value_name = "FORMAT", default_value = "table")]
    pub format: String,

    /// Display only container IDs
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Select one of: table or json
    #[arg(short, long, value_name = "FORMAT", default_value = "table")]
    pub format: String,

    /// The container id
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,

    /// Options passed to ps(1) (default: -ef)
    #[arg(
        value_name = "PS_ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Set the stats collection interval
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub interval: String,

    /// Display the container's stats then exit
    #[arg(long)]
    pub stats: bool,

    /// The container id
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Path to an AF_UNIX socket which will receive a file descriptor referencing the master
    /// end of the console's pseudoterminal
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,

    /// Path to an AF_UNIX socket which will receive a file descriptor referencing the exec
    /// process
    #[arg(long, value_name = "PATH")]
    pub pidfd_socket: Option<PathBuf>,

    /// Current working directory in the container
    #[arg(long, value_name = "PATH")]
    pub cwd: Option<String>,

    /// Set environment variables
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,

    /// UID (format: <uid>[:<gid>])
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,

    /// Additional gids
    #[arg(short = 'g', long, value_name = "GID", allow_negative_numbers = true)]
    pub additional_gids: Vec<i64>,

    /// Path to the process.json
    #[arg(short, long, value_name = "PATH")]
    pub process: Option<PathBuf>,

    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,

    /// Specify the file to write the process id to
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,

    /// Set the asm process label for the process commonly used with selinux
    #[arg(long, value_name = "LABEL")]
    pub process_label: Option<String>,

    /// Set the apparmor profile for the process
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,

    /// Set the no new privileges value for the process
    #[arg(long)]
    pub no_new_privs: bool,

    /// Add a capability to the bounding set for the process
    #[arg(short, long, value_name = "CAP")]
    pub cap: Vec<String>,

    /// Pass N additional file descriptors to the process (stdio + $LISTEN_FDS + N in total)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,

    /// Run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>.
    #[arg(long, value_name = "[CONTROLLER:]PATH")]
    pub cgroup: Vec<String>,

    /// Allow exec in a paused container
    #[arg(long)]
    pub ignore_paused: bool,

    /// The container id, then the command and its arguments (none with --process)
    #[arg(
        value_name = "CONTAINER_ID COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Path to a file containing the resources to update, or "-" to read from standard input
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,

    /// Specifies per cgroup weight, range is from 10 to 1000
    #[arg(long, value_name = "WEIGHT")]
    pub blkio_weight: Option<u16>,

    /// CPU CFS period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long, value_name = "USECS", allow_negative_numbers = true)]
    pub cpu_period: Option<String>,

    /// CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long, value_name = "USECS", allow_negative_numbers = true)]
    pub cpu_quota: Option<String>,

    /// CPU CFS hardcap burst limit (in usecs). Allowed accumulated cpu time additionally for
    /// burst a given period
    #[arg(long, value_name = "USECS", allow_negative_numbers = true)]
    pub cpu_burst: Option<String>,

    /// CPU shares (relative weight vs. other containers)
    #[arg(long, value_name = "SHARES", allow_negative_numbers = true)]
    pub cpu_share: Option<String>,

    /// CPU realtime period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long, value_name = "USECS", allow_negative_numbers = true)]
    pub cpu_rt_period: Option<String>,

    /// CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long, value_name = "USECS", allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<String>,

    /// CPU(s) to use
    #[arg(long, value_name = "CPUS")]
    pub cpuset_cpus: Option<String>,

    /// Memory node(s) to use
    #[arg(long, value_name = "MEMS")]
    pub cpuset_mems: Option<String>,

    /// Obsolete; ignored
    #[arg(long, hide = true, value_name = "BYTES")]
    pub kernel_memory: Option<String>,

    /// Obsolete; ignored
    #[arg(long, hide = true, value_name = "BYTES")]
    pub kernel_memory_tcp: Option<String>,

    /// Memory limit (in bytes)
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true)]
    pub memory: Option<String>,

    /// Set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE
    #[arg(long, value_name = "0|1", allow_negative_numbers = true)]
    pub cpu_idle: Option<String>,

    /// Memory reservation or soft_limit (in bytes)
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true)]
    pub memory_reservation: Option<String>,

    /// Total memory usage (memory + swap); set '-1' to enable unlimited swap
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true)]
    pub memory_swap: Option<String>,

    /// Maximum number of pids allowed in the container
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,

    /// The string of Intel RDT/CAT L3 cache schema
    #[arg(long, value_name = "SCHEMA")]
    pub l3_cache_schema: Option<String>,

    /// The string of Intel RDT/MBA memory bandwidth schema
    #[arg(long, value_name = "SCHEMA")]
    pub mem_bw_schema: Option<String>,

    /// The container id
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// Path for saving criu image files
    #[arg(long, value_name = "PATH")]
    pub image_path: Option<PathBuf>,

    /// Path for saving work files and logs
    #[arg(long, value_name = "PATH")]
    pub work_path: Option<PathBuf>,

    /// Path for previous criu image files in pre-dump
    #[arg(long, value_name = "PATH")]
    pub parent_path: Option<PathBuf>,

    /// Leave the process running after checkpointing
    #[arg(long)]
    pub leave_running: bool,

    /// Allow open tcp connections
    #[arg(long)]
    pub tcp_established: bool,

    /// Skip in-flight tcp connections
    #[arg(long)]
    pub tcp_skip_in_flight: bool,

    /// Allow one to link unlinked files back when possible
    #[arg(long)]
    pub link_remap: bool,

    /// Allow external unix sockets
    #[arg(long)]
    pub ext_unix_sk: bool,

    /// Allow shell jobs
    #[arg(long)]
    pub shell_job: bool,

    /// Use userfaultfd to lazily restore memory pages
    #[arg(long)]
    pub lazy_pages: bool,

    /// criu writes \0 to this FD once lazy-pages is ready
    #[arg(long, value_name = "FD", default_value_t = -1, allow_negative_numbers = true)]
    pub status_fd: i32,

    /// ADDRESS:PORT of the page server
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub page_server: Option<String>,

    /// Handle file locks, for safety
    #[arg(long)]
    pub file_locks: bool,

    /// Dump container's memory information only, leave the container running after this
    #[arg(long)]
    pub pre_dump: bool,

    /// Cgroups mode: soft|full|strict|ignore (default: soft)
    #[arg(long, value_name = "MODE")]
    pub manage_cgroups_mode: Option<String>,

    /// Create a namespace, but don't restore its properties
    #[arg(long, value_name = "NS")]
    pub empty_ns: Vec<String>,

    /// Enable auto deduplication of memory images
    #[arg(long)]
    pub auto_dedup: bool,

    /// The container id
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Path to an AF_UNIX socket which will receive a file descriptor referencing the master
    /// end of the console's pseudoterminal
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,

    /// Path to criu image files for restoring
    #[arg(long, value_name = "PATH")]
    pub image_path: Option<PathBuf>,

    /// Path for saving work files and logs
    #[arg(long, value_name = "PATH")]
    pub work_path: Option<PathBuf>,

    /// Allow open tcp connections
    #[arg(long)]
    pub tcp_established: bool,

    /// Allow external unix sockets
    #[arg(long)]
    pub ext_unix_sk: bool,

    /// Allow shell jobs
    #[arg(long)]
    pub shell_job: bool,

    /// Handle file locks, for safety
    #[arg(long)]
    pub file_locks: bool,

    /// Cgroups mode: soft|full|strict|ignore (default: soft)
    #[arg(long, value_name = "MODE")]
    pub manage_cgroups_mode: Option<String>,

    /// Path to the root of the bundle directory
    #[arg(short, long, value_name = "PATH", default_value = ".")]
    pub bundle: PathBuf,

    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,

    /// Specify the file to write the process id to
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,

    /// Disable the use of the subreaper used to reap reparented processes
    #[arg(long)]
    pub no_subreaper: bool,

    /// Do not use pivot root to jail process inside rootfs
    #[arg(long)]
    pub no_pivot: bool,

    /// Create a namespace, but don't restore its properties
    #[arg(long, value_name = "NS")]
    pub empty_ns: Vec<String>,

    /// Enable auto deduplication of memory images
    #[arg(long)]
    pub auto_dedup: bool,

    /// Use userfaultfd to lazily restore memory pages
    #[arg(long)]
    pub lazy_pages: bool,

    /// Specify an LSM profile to be used during restore in the form of TYPE:NAME
    #[arg(long, value_name = "TYPE:NAME")]
    pub lsm_profile: Option<String>,

    /// Specify an LSM mount context to be used during restore
    #[arg(long, value_name = "CONTEXT")]
    pub lsm_mount_context: Option<String>,

    /// The container id
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Path to the root of the bundle directory
    #[arg(short, long, value_name = "PATH", default_value = ".")]
    pub bundle: PathBuf,

    /// Generate a configuration for a rootless container
    #[arg(long)]
    pub rootless: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn table_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn kill_takes_signal_after_id_even_with_a_dash() {
        let cli = parse(&["hull", "kill", "c1", "-9"]);
        match cli.command {
            Some(Command::Kill(k)) => {
                assert_eq!(k.id, "c1");
                assert_eq!(k.signal.as_deref(), Some("-9"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_may_follow_the_id() {
        match parse(&["hull", "delete", "c1", "--force"]).command {
            Some(Command::Delete(d)) => assert!(d.force && d.id == "c1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exec_keeps_the_command_line_verbatim() {
        let cli = parse(&["hull", "exec", "-t", "c1", "sh", "-c", "--tty", "-e"]);
        match cli.command {
            Some(Command::Exec(e)) => {
                assert!(e.tty);
                assert_eq!(e.args, ["c1", "sh", "-c", "--tty", "-e"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ps_passes_ps_options_through() {
        match parse(&["hull", "ps", "--format", "json", "c1", "-ef", "-o", "pid"]).command {
            Some(Command::Ps(p)) => {
                assert_eq!(p.format, "json");
                assert_eq!(p.ps_args, ["-ef", "-o", "pid"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_defaults_and_short_bundle() {
        match parse(&["hull", "create", "-b", "/b", "c1"]).command {
            Some(Command::Create(c)) => {
                assert_eq!(c.bundle, PathBuf::from("/b"));
                assert_eq!(c.preserve_fds, 0);
                assert!(c.pid_file.is_none());
            }
            other => panic!("{other:?}"),
        }
        match parse(&["hull", "run", "-d", "c1"]).command {
            Some(Command::Run(r)) => {
                assert!(r.detach);
                assert_eq!(r.create.bundle, PathBuf::from("."));
            }
            other => panic!("{other:?}"),
        }
    }
}
