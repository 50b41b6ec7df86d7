//! `state` and `list`: reading containers without changing them.

use super::*;

impl Runtime {
    pub fn state(&self, id: &str) -> Result<OciState, StateError> {
        let st = self.store.read(id)?;
        Ok(st.oci(st.status()))
    }

    /// The state of every container, sorted by id.
    /// Every container under the root, and apart the ones whose state cannot be read (one
    /// broken container does not hide the others: runc's rule).
    pub fn list(&self) -> Result<Listing, StateError> {
        let mut out = Vec::new();
        let mut broken = Vec::new();
        for id in self.store.ids()? {
            match self.state(&id) {
                Ok(s) => out.push(s),
                Err(StateError::NotExist) => {}
                Err(e) => broken.push((id, e)),
            }
        }
        Ok((out, broken))
    }
}
