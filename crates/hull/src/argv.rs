//! argv as urfave/cli (runc's parser) accepts it, rewritten into what clap accepts:
//! `-flag` and `-flag=value` for long flags become `--flag...`, and Go-style boolean values
//! (`--detach=true`, `-debug=false`) become a bare flag or nothing.
//!
//! Only arguments that name a known long flag of the current scope (the global flags before
//! the subcommand, that subcommand's flags after it) are touched; values of flags, everything
//! after `--`, and for `exec` and `ps` everything after the container id stay as they are.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use clap::Command;

/// Subcommands whose arguments after the first positional belong to another program.
const VERBATIM_AFTER_ID: [&str; 2] = ["exec", "ps"];

/// A long flag of one scope: its name and whether it takes a value.
struct Flag {
    long: String,
    takes_value: bool,
}

struct Scope {
    longs: Vec<Flag>,
    /// Short flags that take a value (their next argument is not a positional).
    shorts_with_value: Vec<char>,
}

impl Scope {
    fn of(cmd: &Command) -> Scope {
        let mut longs = Vec::new();
        let mut shorts_with_value = Vec::new();
        for arg in cmd.get_arguments() {
            let takes_value = arg.get_action().takes_values();
            if let Some(longs_of_arg) = arg.get_long_and_visible_aliases() {
                for l in longs_of_arg {
                    longs.push(Flag {
                        long: l.to_string(),
                        takes_value,
                    });
                }
            }
            if takes_value {
                shorts_with_value.extend(arg.get_short_and_visible_aliases().unwrap_or_default());
            }
        }
        // clap adds --help itself; urfave accepts -help too.
        longs.push(Flag {
            long: "help".into(),
            takes_value: false,
        });
        Scope {
            longs,
            shorts_with_value,
        }
    }

    fn long(&self, name: &str) -> Option<&Flag> {
        self.longs.iter().find(|f| f.long == name)
    }
}

/// What to do with one argument that looks like a long flag.
enum Rewrite {
    /// Keep it (possibly respelled), and whether the next argument is its value.
    Keep(OsString, bool),
    /// A boolean flag set to false: drop it.
    Drop,
}

/// Rewrites a dash argument of `scope`, or returns None if it is not a known long flag.
fn rewrite_long(scope: &Scope, arg: &OsStr) -> Option<Rewrite> {
    let bytes = arg.as_bytes();
    let body = bytes.strip_prefix(b"--").or_else(|| {
        let b = bytes.strip_prefix(b"-")?;
        // Exactly one dash and more than one character: `-x` is a short flag.
        (b.len() > 1 && !b.starts_with(b"-")).then_some(b)
    })?;
    let (name, value) = match body.iter().position(|&c| c == b'=') {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let name = std::str::from_utf8(name).ok()?;
    let flag = scope.long(name)?;
    let dashed = |rest: &[u8]| OsString::from_vec([b"--", rest].concat());
    if flag.takes_value {
        return Some(Rewrite::Keep(dashed(body), value.is_none()));
    }
    match value.map(go_bool) {
        None | Some(Some(true)) => Some(Rewrite::Keep(dashed(name.as_bytes()), false)),
        Some(Some(false)) => Some(Rewrite::Drop),
        // Not a boolean: leave it for clap to reject.
        Some(None) => Some(Rewrite::Keep(dashed(body), false)),
    }
}

/// Go's strconv.ParseBool.
fn go_bool(s: &[u8]) -> Option<bool> {
    match s {
        b"1" | b"t" | b"T" | b"true" | b"TRUE" | b"True" => Some(true),
        b"0" | b"f" | b"F" | b"false" | b"FALSE" | b"False" => Some(false),
        _ => None,
    }
}

/// Rewrites `args` (argv without argv[0]) for `cmd`, the clap command of the whole CLI.
pub fn normalize(cmd: &Command, args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut scope = Scope::of(cmd);
    let mut subcommand: Option<&Command> = None;
    let mut seen_positional = false;
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            out.push(arg);
            out.extend(iter.by_ref());
            break;
        }
        if bytes.starts_with(b"-") && bytes != b"-" {
            match rewrite_long(&scope, &arg) {
                Some(Rewrite::Keep(a, value_follows)) => {
                    out.push(a);
                    if value_follows {
                        out.extend(iter.next());
                    }
                }
                Some(Rewrite::Drop) => {}
                None => {
                    let short_with_value =
                        bytes.len() == 2 && scope.shorts_with_value.contains(&char::from(bytes[1]));
                    out.push(arg);
                    if short_with_value {
                        out.extend(iter.next());
                    }
                }
            }
            continue;
        }
        match subcommand {
            None => {
                // The first positional is the subcommand.
                subcommand = arg.to_str().and_then(|name| cmd.find_subcommand(name));
                out.push(arg);
                match subcommand {
                    Some(sub) => scope = Scope::of(sub),
                    None => {
                        // Unknown: clap will report it; leave the rest alone.
                        out.extend(iter.by_ref());
                        break;
                    }
                }
            }
            Some(sub) => {
                out.push(arg);
                if !seen_positional && VERBATIM_AFTER_ID.contains(&sub.get_name()) {
                    out.extend(iter.by_ref());
                    break;
                }
                seen_positional = true;
            }
        }
    }
    out
}

/// The subcommand `args` (argv without argv[0]) names: the first argument that is neither
/// a flag of `globals` (the table of the global flags) nor such a flag's value. None when
/// `--` or the end comes first.
pub fn subcommand_of(globals: &Command, args: &[OsString]) -> Option<String> {
    let scope = Scope::of(globals);
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            return None;
        }
        if !bytes.starts_with(b"-") || bytes == b"-" {
            return arg.to_str().map(str::to_owned);
        }
        let value_follows = match rewrite_long(&scope, arg) {
            Some(Rewrite::Keep(_, value_follows)) => value_follows,
            Some(Rewrite::Drop) => false,
            None => bytes.len() == 2 && scope.shorts_with_value.contains(&char::from(bytes[1])),
        };
        if value_follows {
            iter.next();
        }
    }
    None
}

/// The `--log` and `--log-format` values among the global flags of a normalized argv that clap
/// refused, so the refusal can still be logged where the caller looks for errors.
pub fn peek_log_flags(cmd: &Command, args: &[OsString]) -> (Option<OsString>, Option<String>) {
    let scope = Scope::of(cmd);
    let (mut log, mut format) = (None, None);
    let mut i = 0;
    while i < args.len() {
        let bytes = args[i].as_bytes();
        let Some(body) = bytes.strip_prefix(b"--") else {
            if bytes.starts_with(b"-") {
                i += 1;
                continue;
            }
            // The subcommand: global flags end here.
            break;
        };
        let (name, inline) = match body.iter().position(|&c| c == b'=') {
            Some(p) => (&body[..p], Some(OsString::from_vec(body[p + 1..].to_vec()))),
            None => (body, None),
        };
        let name = String::from_utf8_lossy(name);
        let takes_value = scope.long(&name).is_some_and(|f| f.takes_value);
        let value = if takes_value && inline.is_none() {
            i += 1;
            args.get(i).cloned()
        } else {
            inline
        };
        match &*name {
            "log" => log = value,
            "log-format" => format = value.map(|v| v.to_string_lossy().into_owned()),
            _ => {}
        }
        i += 1;
    }
    (log, format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};
    use hull::cli::Cli;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize(&Cli::command(), args.iter().map(OsString::from).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn single_dash_global_flags_become_double() {
        assert_eq!(
            norm(&[
                "-root",
                "/x",
                "-log-format=json",
                "-log",
                "/l",
                "state",
                "c1"
            ]),
            [
                "--root",
                "/x",
                "--log-format=json",
                "--log",
                "/l",
                "state",
                "c1"
            ]
        );
        assert_eq!(norm(&["-debug", "list"]), ["--debug", "list"]);
    }

    #[test]
    fn subcommand_flags_use_the_subcommand_table() {
        assert_eq!(
            norm(&[
                "restore",
                "-no-subreaper",
                "-pid-file",
                "/p",
                "-b",
                "/b",
                "c1"
            ]),
            [
                "restore",
                "--no-subreaper",
                "--pid-file",
                "/p",
                "-b",
                "/b",
                "c1"
            ]
        );
        assert_eq!(
            norm(&["create", "-bundle", "/b", "-console-socket=/s", "c1"]),
            ["create", "--bundle", "/b", "--console-socket=/s", "c1"]
        );
        // A global-only flag after the subcommand is not known there: left alone.
        assert_eq!(norm(&["state", "-root", "c1"]), ["state", "-root", "c1"]);
    }

    #[test]
    fn values_and_positionals_are_not_touched() {
        // The value of --bundle looks like a flag but is a value.
        assert_eq!(
            norm(&["create", "--bundle", "-pid-file", "c1"]),
            ["create", "--bundle", "-pid-file", "c1"]
        );
        assert_eq!(
            norm(&["-root", "-debug", "list"]),
            ["--root", "-debug", "list"]
        );
        assert_eq!(norm(&["kill", "c1", "-9"]), ["kill", "c1", "-9"]);
        assert_eq!(norm(&["kill", "c1", "-KILL"]), ["kill", "c1", "-KILL"]);
        assert_eq!(
            norm(&["run", "c1", "--", "-detach"]),
            ["run", "c1", "--", "-detach"]
        );
    }

    #[test]
    fn exec_and_ps_arguments_after_the_id_are_verbatim() {
        assert_eq!(
            norm(&["exec", "-tty", "-cwd", "/", "c1", "sh", "-env", "-tty"]),
            ["exec", "--tty", "--cwd", "/", "c1", "sh", "-env", "-tty"]
        );
        assert_eq!(
            norm(&["ps", "-format", "json", "c1", "-format"]),
            ["ps", "--format", "json", "c1", "-format"]
        );
    }

    #[test]
    fn go_booleans_are_folded() {
        assert_eq!(
            norm(&[
                "-systemd-cgroup=true",
                "run",
                "--detach=false",
                "-keep=1",
                "c1"
            ]),
            ["--systemd-cgroup", "run", "--keep", "c1"]
        );
        assert_eq!(
            norm(&["run", "--detach=maybe", "c1"]),
            ["run", "--detach=maybe", "c1"]
        );
    }

    #[test]
    fn normalized_argv_parses() {
        let args = norm(&[
            "-root",
            "/r",
            "-log-format=json",
            "create",
            "-no-pivot",
            "-preserve-fds=2",
            "c1",
        ]);
        let cli = Cli::try_parse_from(std::iter::once("hull".to_string()).chain(args)).unwrap();
        assert_eq!(
            cli.globals.root.as_deref(),
            Some(std::path::Path::new("/r"))
        );
        assert_eq!(cli.globals.log_format, "json");
        match cli.command {
            Some(hull::cli::Command::Create(c)) => {
                assert!(c.no_pivot);
                assert_eq!(c.preserve_fds, 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn log_flags_are_found_in_a_bad_argv() {
        let args: Vec<OsString> = [
            "--root",
            "/r",
            "--log",
            "/l.json",
            "--log-format=json",
            "bogus",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert_eq!(
            peek_log_flags(&Cli::command(), &args),
            (Some("/l.json".into()), Some("json".into()))
        );
    }
}
