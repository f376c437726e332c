//! Files that hold credentials or synced data (the data folder, the SQLite
//! database, the compile cache) are readable by their owner only.

use anyhow::{Context, Result};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Create `dir` (and its parents) readable by this user only; an existing
/// folder is left as the operator set it.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Make `file` readable and writable by its owner only.
pub fn restrict(file: &Path) -> Result<()> {
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} private", file.display()))
}

/// Create `file`, which must not exist, readable and writable by its owner
/// only from the first byte, with `contents`, synced to disk.
pub fn write_new(file: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("creating {}", file.display()))?;
    created.write_all(contents)?;
    created.sync_all()?;
    Ok(())
}
