//! Writing a model (and its external data) atomically.
//!
//! Invariants:
//! - every file is written to a temporary file in the target folder and renamed into
//!   place only when complete: an error or interruption leaves the previous files intact
//!   and no temporary file behind;
//! - with [`ExternalMode::Keep`] external tensors keep their location, offset and length
//!   (the layout is rebuilt sequentially only for a data file whose tensors no longer fit
//!   their recorded places, e.g. because a pass changed their size); a data file that would
//!   overwrite the source model's own (another model saved into the same folder) is written
//!   as `<OUT file name>.data` instead, offsets kept;
//! - a model whose protobuf would pass 2 GiB is written with external data, since
//!   protobuf cannot encode larger messages; the report says so.
use crate::convert::{TensorExporter, export_graph};
use crate::dtype::DataType;
use crate::error::{IrError, Result};
use crate::external::ExternalRef;
use crate::graph::Graph;
use crate::model::Model;
use crate::tensor::{Storage, Tensor};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use whittle_proto::tensor_proto::DataLocation;
use whittle_proto::{Message, StringStringEntryProto, TensorProto};

/// Where tensor data goes when saving.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ExternalMode {
    /// As read: inline stays inline, external keeps its layout.
    #[default]
    Keep,
    /// Tensors of at least this many bytes go to `<OUT file name>.data`; all others inline.
    Threshold(u64),
    /// Everything inline.
    Inline,
}

#[derive(Clone, Debug, Default)]
pub struct SaveOptions {
    pub external: ExternalMode,
    /// A scratch copy that lives only while this process uses it (the file a runtime
    /// loads): still written atomically, but not flushed to the disk (`fsync`), which costs
    /// more than the write on a model of a few MiB.
    pub scratch: bool,
}

/// What a save wrote.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SaveReport {
    pub model_path: PathBuf,
    pub model_bytes: u64,
    /// Data files written, with their sizes.
    pub data_files: Vec<(PathBuf, u64)>,
    pub external_tensors: usize,
    pub notes: Vec<String>,
}

/// Protobuf's hard limit on one message.
const PROTOBUF_LIMIT: u64 = (1 << 31) - 1;
/// Threshold used when a model must be moved to external data to fit protobuf's limit.
const AUTO_THRESHOLD: u64 = 1024;

/// Every tensor of the graph and its subgraphs (initializers and attribute tensors), in
/// export order.
pub fn tensors_of<'a>(g: &'a Graph, out: &mut Vec<&'a Tensor>) {
    out.extend(g.initializers.iter());
    for (_, n) in g.nodes() {
        out.extend(n.attribute_tensors());
        for sub in n.subgraphs() {
            tensors_of(sub, out);
        }
    }
}

fn align(offset: u64, len: u64) -> u64 {
    let a = if len >= 1 << 20 { 4096 } else { 64 };
    offset.div_ceil(a) * a
}

/// Where one tensor's bytes go.
#[derive(Clone)]
enum Placement {
    AsIs,
    Inline(Bytes),
    External {
        location: String,
        offset: u64,
        bytes: Bytes,
    },
}

/// The placements of all tensors, keyed by the tensor's address during this save.
struct Layout {
    placements: HashMap<usize, Placement>,
    files: BTreeMap<String, Vec<(u64, Bytes)>>,
    notes: Vec<String>,
}

fn key(t: &Tensor) -> usize {
    t as *const Tensor as usize
}

fn bytes_of(t: &Tensor) -> Result<Bytes> {
    Ok(match t.storage() {
        Storage::External => t.external.clone().unwrap_or_default(),
        Storage::Raw => t.proto.raw_data.clone().unwrap_or_default(),
        _ => Bytes::from(t.le_bytes()?.into_owned()),
    })
}

fn plan(
    tensors: &[&Tensor],
    mode: &ExternalMode,
    data_name: &str,
    renames: &BTreeMap<String, String>,
) -> Result<Layout> {
    let mut layout = Layout {
        placements: HashMap::new(),
        files: BTreeMap::new(),
        notes: Vec::new(),
    };
    match mode {
        ExternalMode::Inline => {
            for t in tensors.iter().filter(|t| t.is_external()) {
                layout
                    .placements
                    .insert(key(t), Placement::Inline(bytes_of(t)?));
            }
        }
        ExternalMode::Threshold(min) => {
            let mut end = 0u64;
            for t in tensors {
                let movable = t.dtype() != DataType::STRING && t.dtype().bits().is_some();
                if movable && t.data_byte_len() >= *min {
                    let bytes = bytes_of(t)?;
                    let offset = align(end, bytes.len() as u64);
                    end = offset + bytes.len() as u64;
                    layout
                        .files
                        .entry(data_name.to_string())
                        .or_default()
                        .push((offset, bytes.clone()));
                    layout.placements.insert(
                        key(t),
                        Placement::External {
                            location: data_name.to_string(),
                            offset,
                            bytes,
                        },
                    );
                } else if t.is_external() {
                    layout
                        .placements
                        .insert(key(t), Placement::Inline(bytes_of(t)?));
                }
            }
        }
        ExternalMode::Keep => {
            let mut by_location: BTreeMap<String, Vec<(&Tensor, ExternalRef)>> = BTreeMap::new();
            for t in tensors.iter().filter(|t| t.is_external()) {
                let r = ExternalRef::parse(&t.proto)?;
                by_location
                    .entry(r.location.clone())
                    .or_default()
                    .push((t, r));
            }
            for (source, mut members) in by_location {
                let location = renames.get(&source).cloned().unwrap_or(source.clone());
                let renamed = location != source;
                members.sort_by_key(|(_, r)| r.offset);
                let fits = members.iter().all(|(t, r)| {
                    r.length
                        .is_none_or(|l| l == t.external.as_ref().map_or(0, |b| b.len() as u64))
                }) && members.windows(2).all(|w| {
                    let (a, ra) = &w[0];
                    let (b, rb) = &w[1];
                    let a_end = ra.offset + a.external.as_ref().map_or(0, |x| x.len() as u64);
                    a_end <= rb.offset || (ra.offset == rb.offset && a.external == b.external)
                });
                let mut end = 0u64;
                for (t, r) in &members {
                    let bytes = t.external.clone().unwrap_or_default();
                    if fits {
                        let placement = if renamed {
                            Placement::External {
                                location: location.clone(),
                                offset: r.offset,
                                bytes: bytes.clone(),
                            }
                        } else {
                            Placement::AsIs
                        };
                        layout.placements.insert(key(t), placement);
                        layout
                            .files
                            .entry(location.clone())
                            .or_default()
                            .push((r.offset, bytes));
                    } else {
                        let offset = align(end, bytes.len() as u64);
                        end = offset + bytes.len() as u64;
                        layout
                            .files
                            .entry(location.clone())
                            .or_default()
                            .push((offset, bytes.clone()));
                        layout.placements.insert(
                            key(t),
                            Placement::External {
                                location: location.clone(),
                                offset,
                                bytes,
                            },
                        );
                    }
                }
                if !fits {
                    layout.notes.push(format!("external data file {location:?} was laid out anew: its tensors no longer fit their recorded places"));
                }
            }
        }
    }
    Ok(layout)
}

impl TensorExporter for Layout {
    fn tensor(&mut self, t: &Tensor) -> TensorProto {
        let mut p = t.proto.clone();
        match self.placements.get(&key(t)) {
            None | Some(Placement::AsIs) => {}
            Some(Placement::Inline(bytes)) => {
                let mut inline = t.clone();
                inline.set_raw(bytes.clone());
                p = inline.proto;
            }
            Some(Placement::External {
                location,
                offset,
                bytes,
            }) => {
                let mut moved = t.clone();
                moved.set_raw(Bytes::new());
                p = moved.proto;
                p.raw_data = None;
                let kv = |k: &str, v: String| StringStringEntryProto {
                    key: Some(k.into()),
                    value: Some(v),
                };
                p.external_data = vec![
                    kv("location", location.clone()),
                    kv("offset", offset.to_string()),
                    kv("length", bytes.len().to_string()),
                ];
                p.data_location = Some(DataLocation::External as i32);
            }
        }
        p
    }
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> IrError + '_ {
    move |source| IrError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Temporary files being written right now, and whether the process is being
/// interrupted. Creating and renaming temporary files happens under this lock, so once a
/// signal handler has called [`remove_temp_files_in_flight`] no new temporary file appears
/// and no rename replaces an output.
struct Staging {
    interrupted: bool,
    paths: Vec<PathBuf>,
}

static STAGING: std::sync::Mutex<Staging> = std::sync::Mutex::new(Staging {
    interrupted: false,
    paths: Vec::new(),
});

fn staging() -> std::sync::MutexGuard<'static, Staging> {
    STAGING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// For signal handlers (SIGINT, SIGTERM): removes every temporary file a save is writing
/// and stops any further file creation or rename by this process (the lock stays held
/// until the process exits). An interrupted save thus leaves no stray file and the
/// previous output as it was. Call it only right before exiting.
pub fn remove_temp_files_in_flight() {
    let mut state = staging();
    state.interrupted = true;
    for p in state.paths.iter() {
        let _ = std::fs::remove_file(p);
    }
    std::mem::forget(state);
}

/// Unregisters this save's temporary files when it ends, however it ends.
struct InFlight(Vec<PathBuf>);

impl Drop for InFlight {
    fn drop(&mut self) {
        staging().paths.retain(|p| !self.0.contains(p));
    }
}

fn interrupted(path: &Path) -> IrError {
    IrError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted"),
    }
}

/// Writes `write` to a temporary file beside `path`; the caller renames it into place.
fn stage(
    path: &Path,
    durable: bool,
    in_flight: &mut InFlight,
    write: &mut dyn FnMut(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<tempfile::TempPath> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(write_err(path))?;
    let mut tmp = {
        let mut state = staging();
        if state.interrupted {
            return Err(interrupted(path));
        }
        let tmp = tempfile::Builder::new()
            .prefix(".whittle-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(write_err(path))?;
        state.paths.push(tmp.path().to_path_buf());
        in_flight.0.push(tmp.path().to_path_buf());
        tmp
    };
    // tempfile creates 0600 files; a model is an ordinary file (0644), or keeps the mode of
    // the file it replaces.
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions())
        .unwrap_or_else(|_| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::Permissions::from_mode(0o644)
        });
    tmp.as_file()
        .set_permissions(mode)
        .map_err(write_err(path))?;
    write(tmp.as_file_mut()).map_err(write_err(path))?;
    tmp.as_file_mut().flush().map_err(write_err(path))?;
    if durable {
        tmp.as_file().sync_all().map_err(write_err(path))?;
    }
    Ok(tmp.into_temp_path())
}

fn write_data_file(segments: &[(u64, Bytes)], f: &mut std::fs::File) -> std::io::Result<()> {
    let mut pos = 0u64;
    let mut w = std::io::BufWriter::new(f);
    for (offset, bytes) in segments {
        if *offset < pos {
            continue; // an identical, shared segment already written
        }
        std::io::copy(&mut std::io::repeat(0).take(offset - pos), &mut w)?;
        w.write_all(bytes)?;
        pos = offset + bytes.len() as u64;
    }
    w.flush()
}

use std::io::Read as _;

fn out_dir(out: &Path) -> PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// External data files that [`ExternalMode::Keep`] would write over the model's own source
/// data (a different model saved into the same folder): each is written as
/// `<OUT file name>.data` instead (then `.data.1`, …), offsets kept. Saving over the model
/// itself (the caller passed `--force`) keeps the locations.
fn kept_location_renames(model: &Model, out: &Path) -> Result<BTreeMap<String, String>> {
    let mut renames = BTreeMap::new();
    let Some(src) = model.path.as_ref() else {
        return Ok(renames);
    };
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(src, out) {
        return Ok(renames);
    }
    let (src_dir, dir) = (out_dir(src), out_dir(out));
    let data_name = format!(
        "{}.data",
        out.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    let mut tensors = Vec::new();
    tensors_of(&model.graph, &mut tensors);
    for t in tensors.iter().filter(|t| t.is_external()) {
        let location = ExternalRef::parse(&t.proto)?.location;
        if !renames.contains_key(&location) && same(&src_dir.join(&location), &dir.join(&location))
        {
            let name = match renames.len() {
                0 => data_name.clone(),
                k => format!("{data_name}.{k}"),
            };
            renames.insert(location, name);
        }
    }
    Ok(renames)
}

/// The files a save of `model` to `out` would write (to refuse overwriting inputs first).
pub fn target_files(model: &Model, out: &Path, opts: &SaveOptions) -> Result<Vec<PathBuf>> {
    let mut files = vec![out.to_path_buf()];
    let dir = out_dir(out);
    match &opts.external {
        ExternalMode::Inline => {}
        ExternalMode::Threshold(_) => {
            let name = out
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push(dir.join(format!("{name}.data")));
        }
        ExternalMode::Keep => {
            let mut tensors = Vec::new();
            tensors_of(&model.graph, &mut tensors);
            let renames = kept_location_renames(model, out)?;
            for t in tensors.iter().filter(|t| t.is_external()) {
                let location = ExternalRef::parse(&t.proto)?.location;
                let p = dir.join(renames.get(&location).unwrap_or(&location));
                if !files.contains(&p) {
                    files.push(p);
                }
            }
        }
    }
    Ok(files)
}

/// Saves `model` to `out` (and its external data beside it).
pub fn save(model: &Model, out: &Path, opts: &SaveOptions) -> Result<SaveReport> {
    let file_name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model.onnx".into());
    let data_name = format!("{file_name}.data");
    let dir = out_dir(out);
    let mut tensors = Vec::new();
    tensors_of(&model.graph, &mut tensors);
    let mut mode = opts.external.clone();
    let renames = kept_location_renames(model, out)?;
    let mut layout = plan(&tensors, &mode, &data_name, &renames)?;
    let mut proto = model.proto.clone();
    proto.graph = Some(export_graph(&model.graph, &mut layout));
    if proto.encoded_len() as u64 > PROTOBUF_LIMIT
        && mode != ExternalMode::Threshold(AUTO_THRESHOLD)
    {
        let note = format!(
            "the model is {} bytes, past protobuf's 2 GiB limit: tensors of {AUTO_THRESHOLD} bytes or more were moved to {data_name}",
            proto.encoded_len()
        );
        mode = ExternalMode::Threshold(AUTO_THRESHOLD);
        layout = plan(&tensors, &mode, &data_name, &renames)?;
        layout.notes.push(note);
        proto.graph = Some(export_graph(&model.graph, &mut layout));
    }
    if proto.encoded_len() as u64 > PROTOBUF_LIMIT {
        return Err(IrError::Invalid {
            path: out.to_path_buf(),
            message:
                "the model's structure alone (without tensor data) passes protobuf's 2 GiB limit"
                    .into(),
        });
    }
    let mut in_flight = InFlight(Vec::new());
    let mut staged = Vec::new();
    let mut report = SaveReport {
        model_path: out.to_path_buf(),
        ..Default::default()
    };
    for (location, segments) in &layout.files {
        let path = dir.join(location);
        let tmp = stage(&path, !opts.scratch, &mut in_flight, &mut |f| {
            write_data_file(segments, f)
        })?;
        let size = std::fs::metadata(&tmp).map_err(write_err(&path))?.len();
        report.data_files.push((path.clone(), size));
        report.external_tensors += segments.len();
        staged.push((tmp, path));
    }
    report.model_bytes = proto.encoded_len() as u64;
    let tmp = stage(out, !opts.scratch, &mut in_flight, &mut |f| {
        let mut sink = crate::stream::FileSink::new(f);
        proto
            .encode(&mut sink)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        sink.finish()
    })?;
    staged.push((tmp, out.to_path_buf()));
    // Data files first, the model last: a reader never sees a model whose data is missing.
    let state = staging();
    if state.interrupted {
        return Err(interrupted(out));
    }
    for (tmp, path) in staged {
        tmp.persist(&path).map_err(|e| IrError::Write {
            path: path.clone(),
            source: e.error,
        })?;
    }
    drop(state);
    report.notes = layout.notes;
    Ok(report)
}
