//! hull: runc's command line over libhull. argv → a command → one library call → exit code and
//! log line. A failing command logs its error exactly once and exits 1.

#![forbid(unsafe_code)]

mod argv;
mod commands;
mod update;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};
use libhull::logging::{self, Format};

use hull::cli::{Cli, Command};

/// The commands that run code in a container: they run from a sealed copy of the binary.
const CONTAINER_CODE: [&str; 3] = ["create", "run", "exec"];

fn main() {
    libhull::timing::init();
    libhull::timing::mark("exec'd");
    let code = real_main();
    libhull::timing::mark("end");
    std::process::exit(code);
}

fn real_main() -> i32 {
    let raw: Vec<OsString> = std::env::args_os().skip(1).collect();
    // Before anything else happens in this process, argv not even parsed (the re-executed
    // process parses it): the commands that run code in a container continue from a sealed
    // copy of this binary. Any argument spelled as one of them counts, a superset of what
    // clap takes for those commands (it knows no aliases or abbreviations).
    let early = raw.iter().any(|a| CONTAINER_CODE.iter().any(|c| a == c));
    let mut sealed = if early {
        libhull::process::sealed::ensure()
    } else {
        Ok(())
    };
    let cli = match parse_one_subcommand(&raw) {
        Some(cli) => cli,
        None => {
            let mut table = Cli::command();
            let args = argv::normalize(&table, raw);
            let matches = table.try_get_matches_from_mut(
                std::iter::once(OsString::from("hull")).chain(args.clone()),
            );
            match matches.and_then(|m| Cli::from_arg_matches(&m)) {
                Ok(cli) => cli,
                Err(e) => return usage_error(&table, &args, e),
            }
        }
    };
    libhull::timing::mark("argv parsed");

    // Should clap ever take one of them from other words, the protection comes now.
    if !early
        && matches!(
            cli.command,
            Some(Command::Create(_) | Command::Run(_) | Command::Exec(_))
        )
    {
        sealed = libhull::process::sealed::ensure();
    }

    // runc checks the format before it opens the log file; a bad one is reported on stderr.
    let format = match cli.globals.log_format.parse::<Format>() {
        Ok(f) => f,
        Err(e) => return fail(stderr_logging(cli.globals.debug), &e.into()),
    };
    let to_stderr = match logging::init(cli.globals.log.as_deref(), format, cli.globals.debug) {
        Ok(l) => l.writes_to_stderr(),
        Err(e) => return fail(stderr_logging(cli.globals.debug), &e.into()),
    };
    libhull::timing::mark("logging set up");

    if cli.globals.version {
        // runc's lines, its `go:` line as `rust:`: tools parse the first and `libseccomp:`.
        let text = format!(
            "hull version {}\ncommit: {}\nspec: {}\nrust: {}\nlibseccomp: {}\n",
            env!("CARGO_PKG_VERSION"),
            env!("HULL_COMMIT"),
            libhull::spec::OCI_VERSION,
            env!("HULL_RUSTC"),
            libhull::features::libseccomp_version().unwrap_or_else(|| "unknown".into())
        );
        return match std::io::stdout().write_all(text.as_bytes()) {
            Ok(()) => 0,
            Err(e) => fail(to_stderr, &e.into()),
        };
    }
    let Some(command) = cli.command else {
        // runc shows its help when given no command.
        return match Cli::command().print_help() {
            Ok(()) => 0,
            Err(e) => fail(to_stderr, &e.into()),
        };
    };

    // Only the commands that run container code need the protection: a failure to make it
    // does not stop `delete run` or `kill exec`, whose container id merely looks like one.
    let needs_protection = matches!(
        command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    );
    if let (true, Err(e)) = (needs_protection, sealed) {
        return fail(to_stderr, &e.into());
    }
    let result = parse_rootless(&cli.globals.rootless).and_then(|rootless| {
        let root = resolve_root(cli.globals.root.as_deref())?;
        let cgroups = commands::CgroupFlags {
            systemd: cli.globals.systemd_cgroup,
            rootless,
        };
        commands::dispatch(command, &root, cgroups)
    });
    match result {
        Ok(code) => code,
        Err(e) => fail(to_stderr, &e),
    }
}

/// argv parsed with the table of the one subcommand it names ([`Cli::table_for`]). None when
/// it names none, asks for help or is refused: the whole table parses it again, so that help
/// and errors read the same whatever the subcommand.
fn parse_one_subcommand(raw: &[OsString]) -> Option<Cli> {
    let globals = Cli::globals_table();
    let name = argv::subcommand_of(&globals, raw)?;
    let mut table = Cli::table_for(globals, &name)?;
    let args = argv::normalize(&table, raw.to_vec());
    let matches = table
        .try_get_matches_from_mut(std::iter::once(OsString::from("hull")).chain(args))
        .ok()?;
    Cli::from_arg_matches(&matches).ok()
}

/// Logs the command's error, once; with a log file, also prints it on stderr as runc does.
fn fail(to_stderr: bool, err: &anyhow::Error) -> i32 {
    // The top error only: library errors already carry their cause in their message.
    let msg = logging::go_error_text(&err.to_string());
    tracing::error!("{msg}");
    if !to_stderr {
        let _ = writeln!(std::io::stderr(), "{msg}");
    }
    err.downcast_ref::<commands::ExitWith>().map_or(1, |e| e.0)
}

/// Logs to stderr, for errors that happen before (or instead of) the requested logger.
/// Returns the `to_stderr` for [`fail`].
fn stderr_logging(debug: bool) -> bool {
    // init fails only if a logger is installed already, and then that one is used.
    let _ = logging::init(None, Format::Text, debug);
    true
}

/// clap refused argv. Help and version requests print and succeed; anything else is an error,
/// logged where `--log` points if it can be found, and reported in one line.
fn usage_error(table: &clap::Command, args: &[OsString], err: clap::Error) -> i32 {
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            return criu_help_status(args);
        }
        _ => {}
    }
    let (log, format) = argv::peek_log_flags(table, args);
    let format = format
        .and_then(|f| f.parse::<Format>().ok())
        .unwrap_or_default();
    let to_stderr = match logging::init(log.as_deref().map(Path::new), format, false) {
        Ok(l) => l.writes_to_stderr(),
        Err(_) => stderr_logging(false),
    };
    // runc's words and exit status for a command it does not have.
    if err.kind() == ErrorKind::InvalidSubcommand {
        if let Some(clap::error::ContextValue::String(name)) =
            err.get(clap::error::ContextKind::InvalidSubcommand)
        {
            fail(to_stderr, &anyhow!("No help topic for '{name}'"));
            return 3;
        }
    }
    fail(to_stderr, &anyhow!(one_line(&err)))
}

/// The exit status of `checkpoint --help` and `restore --help`: podman (and crun's users)
/// take a zero as "this runtime can checkpoint", so where CRIU does not work here the help
/// is followed by one line saying why, and fails.
fn criu_help_status(args: &[OsString]) -> i32 {
    let named = argv::subcommand_of(&Cli::globals_table(), args);
    let Some(name) = named.filter(|n| n == "checkpoint" || n == "restore") else {
        return 0;
    };
    // The command's own help (`hull checkpoint --help`), not the global one before it.
    let after = args.iter().skip_while(|a| a.as_os_str() != name.as_str());
    if !after
        .skip(1)
        .any(|a| a == "--help" || a == "-h" || a == "-help")
    {
        return 0;
    }
    match libhull::features::checkpoint_support() {
        Ok(_) => 0,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "checkpoint/restore unavailable: {e}");
            1
        }
    }
}

/// clap's message without its "error: " prefix, usage and tips, on one line.
fn one_line(err: &clap::Error) -> String {
    let text = err.to_string();
    let main = text.split("\n\n").next().unwrap_or_default();
    let main = main.strip_prefix("error: ").unwrap_or(main);
    main.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `--rootless`: true, false or auto (Go booleans accepted); `None` for auto. As runc:
/// whether a cgroup the caller may not make is no error (for a container that names no
/// cgroup and asks for no limit); auto is "not the host's root".
fn parse_rootless(value: &str) -> Result<Option<bool>> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Some(true)),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Some(false)),
        "" => Ok(None),
        other if other.eq_ignore_ascii_case("auto") => Ok(None),
        other => bail!("invalid --rootless value {other:?}: want true, false or auto"),
    }
}

/// `--root`, made absolute, or the default: /run/hull for real root, $XDG_RUNTIME_DIR/hull
/// for anyone else (created 0700 and sticky, so the XDG cleaner leaves it alone).
fn resolve_root(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(root) = flag {
        let root = if root.as_os_str().is_empty() {
            std::env::current_dir()?
        } else {
            commands::absolute(root)?
        };
        if root == Path::new("/") {
            bail!("Option --root argument should not be set to /");
        }
        return Ok(root);
    }
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty());
    match xdg {
        Some(dir) if honor_xdg_runtime_dir() => {
            let root = commands::absolute(&Path::new(&dir).join("hull"))?;
            create_xdg_root(&root)?;
            Ok(root)
        }
        _ => Ok(PathBuf::from("/run/hull")),
    }
}

fn create_xdg_root(root: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(|e| {
            anyhow!(
                "the path in $XDG_RUNTIME_DIR must be writable by the user: mkdir {}: {e}",
                root.display()
            )
        })?;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o1700)).map_err(|e| {
        anyhow!(
            "you should check permission of the path in $XDG_RUNTIME_DIR: chmod {}: {e}",
            root.display()
        )
    })
}

/// runc's rule: real root keeps /run/hull even with XDG_RUNTIME_DIR set; non-root uses it, and
/// so does root in a user namespace unless $USER is root.
fn honor_xdg_runtime_dir() -> bool {
    if !nix::unistd::geteuid().is_root() {
        return true;
    }
    if !libhull::sys::proc::in_user_namespace() {
        return false;
    }
    std::env::var_os("USER").is_none_or(|u| u != "root")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn one_subcommand_tables_are_the_whole_tables_subcommands() {
        let whole = Cli::command();
        let args = |c: &clap::Command| {
            c.get_arguments()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
        };
        for sub in whole.get_subcommands() {
            let name = sub.get_name();
            let table = Cli::table_for(Cli::globals_table(), name)
                .unwrap_or_else(|| panic!("no table for {name}"));
            assert_eq!(args(&table), args(&whole), "global flags of {name}'s table");
            let mine = table.find_subcommand(name).unwrap();
            assert_eq!(args(mine), args(sub), "flags of {name}");
            assert_eq!(mine.get_subcommands().count(), 0);
        }
        assert!(Cli::table_for(Cli::globals_table(), "help").is_none());
    }

    #[test]
    fn one_subcommand_parse_agrees_with_the_whole_table() {
        let lines: &[&[&str]] = &[
            &[
                "--root",
                "/r",
                "-log-format=json",
                "create",
                "-no-pivot",
                "-preserve-fds=2",
                "c1",
            ],
            &[
                "--debug",
                "--log",
                "/l",
                "run",
                "-d",
                "--bundle",
                "/b",
                "--pid-file",
                "p",
                "c",
            ],
            &[
                "-root", "/r", "exec", "-t", "--env", "A=1", "c", "sh", "-c", "--root",
            ],
            &["--systemd-cgroup", "--rootless=false", "state", "c"],
            &["kill", "--all", "c", "9"],
            &["delete", "--force", "run"],
            &["--log-format", "json", "list", "-q"],
            &["update", "--memory", "1M", "--pids-limit=3", "c"],
            &["ps", "c", "-ef"],
            &["features"],
        ];
        for line in lines {
            let raw: Vec<OsString> = line.iter().map(OsString::from).collect();
            let fast = parse_one_subcommand(&raw).unwrap_or_else(|| panic!("{line:?}"));
            let args = argv::normalize(&Cli::command(), raw);
            let whole =
                Cli::try_parse_from(std::iter::once(OsString::from("hull")).chain(args)).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{whole:?}"), "{line:?}");
        }
        // Help, unknown subcommands and refused flags go to the whole table.
        for line in [
            &["run", "--help"][..],
            &["frob"],
            &["--", "run"],
            &["state"],
            &["run", "--nope", "c"],
        ] {
            let raw: Vec<OsString> = line.iter().map(OsString::from).collect();
            assert!(parse_one_subcommand(&raw).is_none(), "{line:?}");
        }
    }

    #[test]
    fn usage_errors_fit_one_line() {
        let err = Cli::try_parse_from(["hull", "state"]).unwrap_err();
        let line = one_line(&err);
        assert!(!line.contains('\n'));
        assert!(line.contains("<CONTAINER_ID>"), "{line}");
        let err = Cli::try_parse_from(["hull", "frob"]).unwrap_err();
        assert!(one_line(&err).contains("frob"));
    }

    #[test]
    fn root_is_absolute_and_not_slash() {
        assert_eq!(
            resolve_root(Some(Path::new("/run/x/../hull"))).unwrap(),
            Path::new("/run/hull")
        );
        let err = resolve_root(Some(Path::new("/a/.."))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Option --root argument should not be set to /"
        );
    }

    #[test]
    fn rootless_values() {
        for ok in ["true", "false", "auto", "AUTO", "1", "F"] {
            assert!(parse_rootless(ok).is_ok(), "{ok}");
        }
        assert!(parse_rootless("maybe").is_err());
        assert_eq!(parse_rootless("true").unwrap(), Some(true));
        assert_eq!(parse_rootless("F").unwrap(), Some(false));
        assert_eq!(parse_rootless("Auto").unwrap(), None);
    }
}
