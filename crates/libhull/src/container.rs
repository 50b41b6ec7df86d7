//! The container lifecycle: create, start, run, state, kill, delete, list.

use std::path::PathBuf;

use nix::sys::signal::Signal;

use crate::state::{OciState, Store};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error("container not running")]
    NotRunning,
    #[error("not yet supported: {0}")]
    Unsupported(&'static str),
}

/// Flags of `create` (and the create half of `run`).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

/// The extra flags of `run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub detach: bool,
    pub keep: bool,
    pub no_subreaper: bool,
}

/// The containers under one `--root`.
#[derive(Debug, Clone)]
pub struct Runtime {
    store: Store,
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime {
            store: Store::new(root),
        }
    }

    /// Creates the container; returns once its init has done all setup and waits for `start`.
    pub fn create(&self, _opts: &CreateOptions) -> Result<(), Error> {
        Err(Error::Unsupported("create"))
    }

    /// Releases a created container's init to exec the user process; returns once it has.
    pub fn start(&self, _id: &str) -> Result<(), Error> {
        Err(Error::Unsupported("start"))
    }

    /// create + start; in the foreground, waits and returns the container's exit code
    /// (128+N when killed by signal N) and deletes it unless `keep`.
    pub fn run(&self, _opts: &CreateOptions, _run: &RunOptions) -> Result<i32, Error> {
        Err(Error::Unsupported("run"))
    }

    pub fn state(&self, id: &str) -> Result<OciState, Error> {
        let entry = self.store.open(id)?;
        let st = entry.load()?;
        Ok(st.oci(st.status()))
    }

    /// Sends `signal` to the init (or with `all`, to every process of the container).
    pub fn kill(&self, _id: &str, _signal: Signal, _all: bool) -> Result<(), Error> {
        Err(Error::Unsupported("kill"))
    }

    /// Deletes a stopped container (`force`: kills it first); `force` on a missing id succeeds.
    pub fn delete(&self, _id: &str, _force: bool) -> Result<(), Error> {
        Err(Error::Unsupported("delete"))
    }

    /// The state of every container, sorted by id.
    pub fn list(&self) -> Result<Vec<OciState>, Error> {
        let mut out = Vec::new();
        for id in self.store.ids()? {
            if let Ok(s) = self.state(&id) {
                out.push(s);
            }
        }
        Ok(out)
    }
}

