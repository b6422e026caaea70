//! Creating the home directory and its `logs/` folder, private to the user.
//!
//! Which paths exist is decided in `velos_proto::home`, shared with the clients; this
//! module only creates them, 0700, and tightens a home that was made looser by hand.
//! Log file paths cannot leave `logs/`: they are built from names that passed
//! `validate_name`, which allows no `/` and no leading `.`.

use std::fs::{DirBuilder, Permissions};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use velos_proto::Home;

/// Creates the home and `logs/` (0700), or makes existing ones 0700.
pub fn create_home(home: &Home) -> anyhow::Result<()> {
    create_private_dir(home.root())?;
    create_private_dir(&home.logs_dir())
}

fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    std::fs::set_permissions(path, Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private (0700)", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn home_and_logs_are_private() {
        let root = std::env::temp_dir().join(format!("velosd-paths-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::set_permissions(&root, Permissions::from_mode(0o755)).unwrap();
        let home = Home::at(&root);
        create_home(&home).unwrap();
        for dir in [home.root().to_owned(), home.logs_dir()] {
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", dir.display());
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
