//! `hull-dist OUT`: writes what a package installs beside the binary, generated from hull's
//! clap table so that it always says what the binary does: man pages in section 8 (as runc's:
//! `hull.8` and `hull-<command>.8` for each command) under `OUT/man/`, and bash, zsh and fish
//! completions under `OUT/completions/`.

#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use hull::cli::Cli;

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        let _ = writeln!(std::io::stderr(), "usage: hull-dist OUT_DIR");
        return ExitCode::from(2);
    };
    match generate(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "hull-dist: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(out: &Path) -> std::io::Result<()> {
    let man = out.join("man");
    let completions = out.join("completions");
    // Nothing an earlier run wrote (a page of a command since removed) is packaged.
    for dir in [&man, &completions] {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let mut cmd = Cli::command().version(env!("CARGO_PKG_VERSION"));
    // Gives each subcommand its display name (`hull-run`), the man page's title.
    cmd.build();
    write_page(&man, cmd.clone())?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_page(&man, sub.clone())?;
    }
    for (shell, name) in [
        (Shell::Bash, "hull"),
        (Shell::Zsh, "_hull"),
        (Shell::Fish, "hull.fish"),
    ] {
        let mut file = BufWriter::new(File::create(completions.join(name))?);
        clap_complete::generate(shell, &mut cmd, "hull", &mut file);
        file.flush()?;
    }
    Ok(())
}

/// `<display name>.8`: runc's pages are in section 8, system administration.
fn write_page(dir: &Path, cmd: clap::Command) -> std::io::Result<()> {
    let name = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string();
    let mut file = BufWriter::new(File::create(dir.join(format!("{name}.8")))?);
    clap_mangen::Man::new(cmd)
        .section("8")
        .manual("hull manual")
        .source(format!("hull {}", env!("CARGO_PKG_VERSION")))
        .render(&mut file)?;
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command has its page, naming its flags; the completions know every command.
    #[test]
    fn pages_and_completions_cover_every_command() {
        let out = std::env::temp_dir().join(format!("hull-dist-test-{}", std::process::id()));
        generate(&out).unwrap();
        let cmd = Cli::command();
        let bash = std::fs::read_to_string(out.join("completions/hull")).unwrap();
        let fish = std::fs::read_to_string(out.join("completions/hull.fish")).unwrap();
        let zsh = std::fs::read_to_string(out.join("completions/_hull")).unwrap();
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = sub.get_name();
            let page = std::fs::read_to_string(out.join(format!("man/hull-{name}.8")))
                .unwrap_or_else(|e| panic!("hull-{name}.8: {e}"));
            assert!(page.starts_with(".ie"), "not roff: hull-{name}.8");
            assert!(page.contains(&format!(".TH hull-{name} 8")), "{page}");
            let shown = sub.get_arguments().filter(|a| !a.is_hide_set());
            for arg in shown.filter_map(|a| a.get_long()) {
                assert!(
                    page.contains(&format!("\\-\\-{}", arg.replace('-', "\\-"))),
                    "hull-{name}.8 lacks --{arg}"
                );
            }
            for text in [&bash, &fish, &zsh] {
                assert!(text.contains(name), "a completion lacks {name}");
            }
        }
        let top = std::fs::read_to_string(out.join("man/hull.8")).unwrap();
        assert!(
            top.contains("hull\\-run(8)"),
            "hull.8 does not refer to hull-run(8)"
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
}
