//! `.npz` archives (numpy `savez` / `savez_compressed`): a zip of `KEY.npy` members.
//!
//! Invariants: reading returns the arrays in archive order with the `.npy` suffix removed
//! from each key; every error names the file and, once known, the key. Writing is
//! deterministic: members in the order given, timestamps fixed at 1980-01-01, so the same
//! tensors always give the same bytes. See [`crate::npy`] for what a member may hold
//! (Fortran order is read and reordered; structured/object/complex arrays are refused).

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use crate::npy;
use crate::tensor::NamedTensor;

/// How `write_npz` stores members: like `np.savez` or like `np.savez_compressed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NpzCompression {
    #[default]
    Stored,
    Deflated,
}

#[derive(Debug, thiserror::Error)]
pub enum NpzError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a readable .npz (zip) archive: {source}", path.display())]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{}: array \"{key}\": {reason}", path.display())]
    Array {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error("{}: key \"{key}\" appears twice", path.display())]
    DuplicateKey { path: PathBuf, key: String },
    #[error("{}: key \"{key}\" not found (keys: {})", path.display(), available.join(", "))]
    MissingKey {
        path: PathBuf,
        key: String,
        available: Vec<String>,
    },
}

/// Reads every array of an `.npz` file, in archive order.
pub fn read_npz(path: &Path) -> Result<Vec<NamedTensor>, NpzError> {
    let io = |source| NpzError::Io {
        path: path.to_path_buf(),
        source,
    };
    let zip_err = |source| NpzError::Zip {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut archive = ZipArchive::new(std::io::BufReader::new(file)).map_err(zip_err)?;
    let mut out: Vec<NamedTensor> = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let mut member = archive.by_index(index).map_err(zip_err)?;
        let name = member.name().map_err(zip_err)?.into_owned();
        if member.is_dir() {
            continue;
        }
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        // Sized up front (growing by doubling copies a big array several times); the size
        // a member claims is trusted only up to the archive's own size, as it may lie.
        let archive_len = std::fs::metadata(path).map_or(0, |m| m.len());
        let mut bytes = Vec::with_capacity(member.size().min(archive_len) as usize);
        member
            .read_to_end(&mut bytes)
            .map_err(|e| NpzError::Array {
                path: path.to_path_buf(),
                key: key.clone(),
                reason: format!("cannot decompress member {name}: {e}"),
            })?;
        let tensor = npy::decode(&bytes).map_err(|reason| NpzError::Array {
            path: path.to_path_buf(),
            key: key.clone(),
            reason,
        })?;
        if out.iter().any(|(k, _)| *k == key) {
            return Err(NpzError::DuplicateKey {
                path: path.to_path_buf(),
                key,
            });
        }
        out.push((key, tensor));
    }
    Ok(out)
}

/// Takes the array named `key` out of a list read by [`read_npz`].
pub fn take_key(
    arrays: &mut Vec<NamedTensor>,
    path: &Path,
    key: &str,
) -> Result<crate::HostTensor, NpzError> {
    match arrays.iter().position(|(k, _)| k == key) {
        Some(i) => Ok(arrays.remove(i).1),
        None => Err(NpzError::MissingKey {
            path: path.to_path_buf(),
            key: key.to_string(),
            available: arrays.iter().map(|(k, _)| k.clone()).collect(),
        }),
    }
}

/// Writes `arrays` to `path` as `KEY.npy` members (replacing the file).
pub fn write_npz(
    path: &Path,
    arrays: &[NamedTensor],
    compression: NpzCompression,
) -> Result<(), NpzError> {
    let io = |source| NpzError::Io {
        path: path.to_path_buf(),
        source,
    };
    let zip_err = |source| NpzError::Zip {
        path: path.to_path_buf(),
        source,
    };
    for (i, (key, _)) in arrays.iter().enumerate() {
        if arrays[..i].iter().any(|(k, _)| k == key) {
            return Err(NpzError::DuplicateKey {
                path: path.to_path_buf(),
                key: key.clone(),
            });
        }
    }
    let method = match compression {
        NpzCompression::Stored => CompressionMethod::Stored,
        NpzCompression::Deflated => CompressionMethod::Deflated,
    };
    let file = File::create(path).map_err(io)?;
    let mut zip = ZipWriter::new(BufWriter::new(file));
    for (key, tensor) in arrays {
        let bytes = npy::encode(tensor);
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .last_modified_time(DateTime::default())
            .unix_permissions(0o644)
            .large_file(bytes.len() as u64 >= u64::from(u32::MAX));
        zip.start_file(format!("{key}.npy"), options)
            .map_err(zip_err)?;
        zip.write_all(&bytes).map_err(io)?;
    }
    let mut writer = zip.finish().map_err(zip_err)?;
    writer.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HostTensor;

    #[test]
    fn duplicate_keys_are_refused_on_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dup.npz");
        let t = HostTensor::scalar(1f32);
        let err = write_npz(
            &path,
            &[("a".into(), t.clone()), ("a".into(), t)],
            NpzCompression::Stored,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("dup.npz: key \"a\" appears twice")
        );
    }

    #[test]
    fn not_a_zip_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.npz");
        std::fs::write(&path, b"definitely not a zip").unwrap();
        let err = read_npz(&path).unwrap_err().to_string();
        assert!(err.contains("junk.npz: not a readable .npz"), "{err}");
    }
}
