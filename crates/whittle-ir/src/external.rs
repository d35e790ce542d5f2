//! External tensor data: where it may live and how it is read.
//!
//! Invariants:
//! - a location is a relative path that stays inside the model's folder: absolute paths,
//!   `..` components and symlinks that resolve outside the folder are refused;
//! - `offset + length` is checked against the file size before anything is sliced;
//! - each data file is memory-mapped once per load and shared by all tensors that point
//!   into it, so external bytes are never copied on load.
use crate::error::{IrError, Result};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use whittle_proto::TensorProto;

/// The `external_data` entries of a tensor, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalRef {
    pub location: String,
    pub offset: u64,
    pub length: Option<u64>,
}

fn err(tensor: &TensorProto, message: impl Into<String>) -> IrError {
    IrError::External {
        tensor: tensor.name().to_string(),
        message: message.into(),
    }
}

impl ExternalRef {
    /// Parses `location`, `offset` and `length` (other keys such as `checksum` are kept in
    /// the proto but not interpreted).
    pub fn parse(tensor: &TensorProto) -> Result<ExternalRef> {
        let mut location = None;
        let mut offset = 0u64;
        let mut length = None;
        for entry in &tensor.external_data {
            let value = entry.value();
            let number = || {
                value.parse::<u64>().map_err(|_| {
                    err(
                        tensor,
                        format!("{} {value:?} is not a byte count", entry.key()),
                    )
                })
            };
            match entry.key() {
                "location" => location = Some(value.to_string()),
                "offset" => offset = number()?,
                "length" => length = Some(number()?),
                _ => {}
            }
        }
        let location = location.ok_or_else(|| err(tensor, "has no location"))?;
        Ok(ExternalRef {
            location,
            offset,
            length,
        })
    }
}

/// Checks that `location` is a plain relative path below `dir` and returns the full path.
pub fn resolve_location(dir: &Path, location: &str, tensor: &TensorProto) -> Result<PathBuf> {
    let rel = Path::new(location);
    if location.is_empty() {
        return Err(err(tensor, "location is empty"));
    }
    for c in rel.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(err(
                    tensor,
                    format!("location {location:?} leaves the model's folder (\"..\")"),
                ));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(err(
                    tensor,
                    format!(
                        "location {location:?} is absolute; it must be relative to the model's folder"
                    ),
                ));
            }
        }
    }
    let full = dir.join(rel);
    let real_dir = dir.canonicalize().map_err(|e| {
        err(
            tensor,
            format!("folder {} cannot be resolved: {e}", dir.display()),
        )
    })?;
    let real = full.canonicalize().map_err(|e| {
        err(
            tensor,
            format!("file {} cannot be opened: {e}", full.display()),
        )
    })?;
    if !real.starts_with(&real_dir) {
        return Err(err(
            tensor,
            format!(
                "location {location:?} resolves to {} outside the model's folder",
                real.display()
            ),
        ));
    }
    Ok(real)
}

/// Maps data files once and hands out slices of them.
#[derive(Default)]
pub struct ExternalLoader {
    dir: PathBuf,
    files: BTreeMap<PathBuf, Bytes>,
}

impl ExternalLoader {
    pub fn new(dir: &Path) -> ExternalLoader {
        ExternalLoader {
            dir: dir.to_path_buf(),
            files: BTreeMap::new(),
        }
    }

    fn file(&mut self, path: &Path, tensor: &TensorProto) -> Result<Bytes> {
        if let Some(b) = self.files.get(path) {
            return Ok(b.clone());
        }
        let file = std::fs::File::open(path).map_err(|e| {
            err(
                tensor,
                format!("file {} cannot be opened: {e}", path.display()),
            )
        })?;
        let len = file
            .metadata()
            .map_err(|e| err(tensor, format!("file {}: {e}", path.display())))?
            .len();
        let bytes = if len == 0 {
            Bytes::new()
        } else {
            // SAFETY: the map is read-only; whittle never writes to an input file (outputs go
            // to a temporary file that is renamed over the target, which leaves this inode
            // and its mapping intact). Another process truncating the file while we run is
            // outside what any reader can defend against.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| {
                err(
                    tensor,
                    format!("file {} cannot be mapped: {e}", path.display()),
                )
            })?;
            Bytes::from_owner(map)
        };
        self.files.insert(path.to_path_buf(), bytes.clone());
        Ok(bytes)
    }

    /// The bytes `tensor` points at; checked against the file's size.
    pub fn load(&mut self, tensor: &TensorProto) -> Result<Bytes> {
        let r = ExternalRef::parse(tensor)?;
        let path = resolve_location(&self.dir, &r.location, tensor)?;
        let file = self.file(&path, tensor)?;
        let size = file.len() as u64;
        let end = match r.length {
            Some(len) => r.offset.checked_add(len),
            None => Some(size),
        };
        match end {
            Some(end) if r.offset <= size && end <= size && r.offset <= end => {
                Ok(file.slice(r.offset as usize..end as usize))
            }
            _ => Err(err(
                tensor,
                format!(
                    "offset {} + length {} is past the end of {} ({size} bytes)",
                    r.offset,
                    r.length.map_or("(rest)".to_string(), |l| l.to_string()),
                    r.location
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whittle_proto::StringStringEntryProto;

    fn ext(location: &str, offset: u64, length: u64) -> TensorProto {
        let kv = |k: &str, v: String| StringStringEntryProto {
            key: Some(k.into()),
            value: Some(v),
        };
        TensorProto {
            name: Some("w".into()),
            external_data: vec![
                kv("location", location.into()),
                kv("offset", offset.to_string()),
                kv("length", length.to_string()),
            ],
            data_location: Some(1),
            ..Default::default()
        }
    }

    #[test]
    fn escaping_locations_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = ExternalLoader::new(dir.path());
        for (loc, why) in [
            ("../x.data", "\"..\""),
            ("/etc/passwd", "absolute"),
            ("", "empty"),
        ] {
            let e = l.load(&ext(loc, 0, 1)).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("\"w\""), "{loc}: {e}");
        }
    }

    #[test]
    fn symlink_out_of_folder_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"12345678").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("w.data"))
            .unwrap();
        let e = ExternalLoader::new(dir.path())
            .load(&ext("w.data", 0, 4))
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside the model's folder"), "{e}");
    }

    #[test]
    fn ranges_are_checked_and_sliced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.data"), b"0123456789").unwrap();
        let mut l = ExternalLoader::new(dir.path());
        assert_eq!(&l.load(&ext("w.data", 2, 3)).unwrap()[..], b"234");
        let e = l.load(&ext("w.data", 8, 3)).unwrap_err().to_string();
        assert!(e.contains("past the end") && e.contains("10 bytes"), "{e}");
        let e = l.load(&ext("w.data", 1, 1 << 40)).unwrap_err().to_string();
        assert!(e.contains("past the end"), "{e}");
        let e = l
            .load(&ext("w.data", u64::MAX, u64::MAX))
            .unwrap_err()
            .to_string();
        assert!(e.contains("past the end"), "{e}");
    }
}
