//! `whittle quantize`: weight-only, dynamic or static int8/int4 quantization, or float16.
//!
//! Steps: load and verify the input; in static mode (or fp16 with `--calib`) collect
//! activation statistics over the calibration set through whittle-runtime; run the
//! quantize pass (whittle-passes, which never sees the runtime); verify; write the model
//! atomically (never over an input unless `--force`); with `--calib`, run the float and the
//! quantized model on the calibration set and report the error at every quantized layer
//! and at the outputs. Nothing is written when any step fails.
//!
//! Options that add steps: `--bias-correction` measures the per-channel means of the
//! quantized layers' inputs on the calibration set first (handed to the pass as
//! `CalibrationData::means`); `--no-slower` times the result against the input and
//! re-quantizes with op types kept in float until it is not slower ([`no_slower`]), before
//! anything is written; `--format qoperator` (static) is a pass option.
pub mod calibrate;
pub mod gptq_moments;
pub mod no_slower;
mod print;
mod speed;

pub use speed::SpeedCheck;
use speed::check_speed;

use super::backend_args::{BackendArgs, load_model, print_notes};
use crate::output::{check_not_overwriting, print_json};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Instant;
use whittle_ir::SaveOptions;
use whittle_ir::shape::ShapeOverrides;
use whittle_passes::PassContext;
use whittle_passes::quantize::{
    self, CalibMethod, Format, Granularity, Mode, QuantType, QuantizeOptions, QuantizeReport,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Weights stored as integers, DequantizeLinear before their consumer; activations float.
    Weight,
    /// DynamicQuantizeLinear on activations + MatMulInteger (ConvInteger with --conv-integer).
    Dynamic,
    /// QDQ on activations and weights, ranges from --calib.
    Static,
    /// float16 weights and compute.
    Fp16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    Int8,
    Uint8,
    Int4,
    Uint4,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Standard QuantizeLinear/DequantizeLinear.
    Qdq,
    /// com.microsoft MatMulNBits for MatMul weights (onnxruntime only; 4 or 8 bits).
    OrtNbits,
    /// Static mode: QLinearConv / QLinearMatMul (onnxruntime CPU kernels), QDQ elsewhere.
    Qoperator,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CalibArg {
    Minmax,
    Percentile,
    Entropy,
    Mse,
}

#[derive(Args)]
#[command(after_help = "\
Defaults: --mode weight --dtype int8 --per-channel --symmetric. Per channel means Conv axis 0,
Gemm/MatMul the output axis (transB honoured); --block-size B quantizes blocks of B along the
reduction axis (opset 21). The ai.onnx opset is raised only when the chosen form needs it
(per-channel 13, float16 scales 19, int4 or blocks 21), and the report says so.
The report lists every candidate node: quantized or not and why, weight SQNR, bytes, and the
share of MACs covered. With --calib, the float and quantized models also run on the
calibration set and the error is reported per quantized layer and at the outputs.
--bias-correction (weight/static, needs --calib) shifts each Conv/Gemm/MatMul+Add bias by
(W_q − W)·E[x], E[x] measured on the calibration set (Conv: padding is ignored, so border
outputs are corrected approximately). --no-slower implies --check-speed and keeps in float
the op types that do not gain. --format qoperator (static) writes QLinearConv/QLinearMatMul
where onnxruntime has CPU kernels and QDQ elsewhere.")]
pub struct QuantizeArgs {
    /// The model to read.
    pub input: PathBuf,
    /// Where to write the quantized model.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "weight")]
    pub mode: ModeArg,
    /// Weight type.
    #[arg(long, value_enum, default_value = "int8")]
    pub dtype: DtypeArg,
    /// One scale per output channel (the default).
    #[arg(long, conflicts_with_all = ["per_tensor", "block_size"])]
    pub per_channel: bool,
    /// One scale per weight tensor.
    #[arg(long, conflicts_with = "block_size")]
    pub per_tensor: bool,
    /// One scale per block of this many weights along the reduction axis (power of two ≥ 16).
    #[arg(long, value_name = "B")]
    pub block_size: Option<usize>,
    /// Symmetric weights (zero point 0; the default).
    #[arg(long, conflicts_with = "asymmetric")]
    pub symmetric: bool,
    /// Asymmetric weights (zero point from the range).
    #[arg(long)]
    pub asymmetric: bool,
    #[arg(long, value_enum, default_value = "qdq")]
    pub format: FormatArg,
    /// Op types to leave alone (comma-separated; fp16: kept in float32).
    #[arg(long, value_delimiter = ',', value_name = "OPS")]
    pub exclude_ops: Vec<String>,
    /// Node names to leave alone (comma-separated; fp16: kept in float32).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub exclude_nodes: Vec<String>,
    /// Leave weights with fewer elements alone.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub min_elements: u64,
    /// Dynamic mode: also rewrite Conv as ConvInteger (slow in onnxruntime on CPU).
    #[arg(long)]
    pub conv_integer: bool,
    /// Calibration set: an .npz keyed by input names, samples on axis 0.
    #[arg(long, value_name = "FILE.npz")]
    pub calib: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "minmax")]
    pub calib_method: CalibArg,
    /// Percentile of values kept by --calib-method percentile.
    #[arg(long, value_name = "P", default_value_t = 99.99)]
    pub percentile: f64,
    /// Static mode: activation type.
    #[arg(long, value_enum, default_value = "uint8")]
    pub activation_dtype: DtypeArg,
    /// Static mode: symmetric activations.
    #[arg(long)]
    pub symmetric_activations: bool,
    /// fp16: keep float32 graph inputs and outputs (Casts inside the model).
    #[arg(long)]
    pub keep_io_types: bool,
    /// weight/static with --calib: subtract from each quantized layer's bias the mean error
    /// its weight quantization adds, (W_q − W)·E[x] with E[x] measured on the calibration set.
    #[arg(long)]
    pub bias_correction: bool,
    /// weight mode with --calib: round each weight with GPTQ (error compensation against
    /// its layer's inputs on the calibration set) instead of to nearest; same format and
    /// size. Calibrate on data like what the model will see: GPTQ fits that data.
    #[arg(long)]
    pub gptq: bool,
    /// With --calib: do not run the float and quantized models to measure the error.
    #[arg(long)]
    pub no_measure: bool,
    /// Time the quantized model against the input (batch 1, onnxruntime when available, else
    /// tract) and report the ratio; a slower result is reported as a finding.
    #[arg(long)]
    pub check_speed: bool,
    /// With the speed check (implied): when the quantized model is slower than the input,
    /// retry with grouped Conv, then Conv, ConvTranspose, MatMul, Gemm kept in float and keep
    /// the fastest result that is not slower (or the float model when nothing gains).
    #[arg(long)]
    pub no_slower: bool,
    /// Run the clean-up passes first (fold BatchNorm into Conv, …). Default in static mode.
    #[arg(long, conflicts_with = "no_optimize")]
    pub optimize: bool,
    /// Do not run the clean-up passes first.
    #[arg(long)]
    pub no_optimize: bool,
    /// Allow writing over an input file.
    #[arg(long)]
    pub force: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress bars (calibration, GPTQ's layer inputs).
    #[arg(short, long)]
    pub quiet: bool,
    /// List every candidate node (default: only a summary of the skipped ones).
    #[arg(short, long)]
    pub verbose: bool,
    #[command(flatten)]
    pub backend: BackendArgs,
}

fn qtype(d: DtypeArg) -> QuantType {
    match d {
        DtypeArg::Int8 => QuantType::Int8,
        DtypeArg::Uint8 => QuantType::Uint8,
        DtypeArg::Int4 => QuantType::Int4,
        DtypeArg::Uint4 => QuantType::Uint4,
    }
}

/// The pass options the arguments ask for (checked for combinations that make no sense).
pub fn options(args: &QuantizeArgs) -> Result<QuantizeOptions> {
    let mode = match args.mode {
        ModeArg::Weight => Mode::Weight,
        ModeArg::Dynamic => Mode::Dynamic,
        ModeArg::Static => Mode::Static,
        ModeArg::Fp16 => Mode::Fp16,
    };
    let format = match args.format {
        FormatArg::Qdq => Format::Qdq,
        FormatArg::OrtNbits => Format::OrtNbits,
        FormatArg::Qoperator => Format::QOperator,
    };
    if format == Format::QOperator && mode != Mode::Static {
        bail!("--format qoperator is for --mode static (QLinear ops take quantized activations)");
    }
    if let Some(b) = args.block_size {
        if b < 16 || !b.is_power_of_two() {
            bail!("--block-size {b}: expected a power of two ≥ 16 (e.g. 32, 64, 128)");
        }
        if mode != Mode::Weight {
            bail!("--block-size is for --mode weight (block-wise weight-only quantization)");
        }
    }
    if format == Format::OrtNbits && mode != Mode::Weight {
        bail!("--format ort-nbits is for --mode weight");
    }
    let granularity = match (args.block_size, args.per_tensor, format) {
        (Some(b), _, _) => Granularity::Block(b),
        (None, _, Format::OrtNbits) => Granularity::Block(quantize::nbits::DEFAULT_BLOCK),
        (None, true, _) => Granularity::PerTensor,
        (None, false, _) => Granularity::PerChannel,
    };
    let weight_type = qtype(args.dtype);
    if mode == Mode::Dynamic && weight_type.bits() != 8 {
        bail!(
            "--mode dynamic writes MatMulInteger/ConvInteger, which take 8-bit weights: use --dtype int8 (or uint8)"
        );
    }
    if mode == Mode::Static && weight_type.bits() != 8 {
        bail!("--mode static quantizes weights to int8 or uint8 (int4 is for --mode weight)");
    }
    if mode == Mode::Static && args.calib.is_none() {
        bail!("--mode static needs a calibration set: --calib FILE.npz");
    }
    if args.bias_correction {
        if !matches!(mode, Mode::Weight | Mode::Static) {
            bail!("--bias-correction is for --mode weight or --mode static");
        }
        if args.calib.is_none() {
            bail!("--bias-correction measures layer inputs on a calibration set: --calib FILE.npz");
        }
        if format == Format::OrtNbits {
            bail!(
                "--bias-correction does not support --format ort-nbits (MatMulNBits has no bias input whittle corrects)"
            );
        }
    }
    if args.gptq {
        if mode != Mode::Weight {
            bail!("--gptq is for --mode weight (it chooses how weights are rounded)");
        }
        if args.calib.is_none() {
            bail!("--gptq measures each layer's inputs on a calibration set: --calib FILE.npz");
        }
    }
    let calib_method = match args.calib_method {
        CalibArg::Minmax => CalibMethod::MinMax,
        CalibArg::Percentile => {
            if !(50.0..=100.0).contains(&args.percentile) {
                bail!(
                    "--percentile {}: expected a number in 50..100",
                    args.percentile
                );
            }
            CalibMethod::Percentile {
                percentile: args.percentile,
            }
        }
        CalibArg::Entropy => CalibMethod::Entropy,
        CalibArg::Mse => CalibMethod::Mse,
    };
    Ok(QuantizeOptions {
        mode,
        weight_type,
        activation_type: qtype(args.activation_dtype),
        granularity,
        symmetric: !args.asymmetric,
        symmetric_activations: args.symmetric_activations,
        format,
        exclude_ops: args.exclude_ops.clone(),
        exclude_nodes: args.exclude_nodes.clone(),
        min_elements: args.min_elements,
        conv_integer: args.conv_integer,
        calib_method,
        keep_io_types: args.keep_io_types,
        bias_correction: args.bias_correction,
        gptq: args.gptq,
    })
}

/// Everything `--json` prints.
#[derive(serde::Serialize)]
struct JsonReport<'a> {
    input: &'a std::path::Path,
    output: Option<&'a std::path::Path>,
    options: &'a QuantizeOptions,
    seconds: Timings,
    notes: &'a [String],
    report: &'a QuantizeReport,
    error: Option<&'a calibrate::ErrorReport>,
    save: Option<&'a whittle_ir::SaveReport>,
    speed: Option<&'a SpeedCheck>,
    no_slower: Option<&'a no_slower::Decision>,
}

/// Wall time of each step, seconds.
#[derive(Clone, Copy, Default, serde::Serialize)]
pub struct Timings {
    pub load: f64,
    pub calibrate: f64,
    pub quantize: f64,
    pub save: f64,
    pub measure: f64,
    pub total: f64,
}

pub fn run(args: QuantizeArgs) -> Result<()> {
    let started = Instant::now();
    let mut t = Timings::default();
    let opts = options(&args)?;
    let statistics_wanted = matches!(opts.mode, Mode::Static | Mode::Fp16);
    let original = load_model(&args.input)?;
    // Calibration (ranges, GPTQ's moments, bias correction's means) prefers onnxruntime;
    // measuring the result and timing it keep the runtime asked for (tract by default).
    let calib_backend = match &args.calib {
        Some(_) => args.backend.for_calibration(&original),
        None => args.backend.clone(),
    };
    let mut prefetch = match &args.calib {
        Some(path) if statistics_wanted => Some(calibrate::Prefetch::start(path, &calib_backend)),
        _ => None,
    };
    if let Err(e) = whittle_ir::verify::verify(&original) {
        bail!(
            "{}: the input is not a valid model, so it cannot be quantized safely: {e}",
            args.input.display()
        );
    }
    if let Some(out) = &args.output {
        let mut inputs = vec![args.input.clone()];
        inputs.extend(original.external_files());
        check_not_overwriting(std::slice::from_ref(out), &inputs, args.force)?;
    }
    let mut notes = Vec::new();
    let mut model = original.clone();
    let optimize = args.optimize || (opts.mode == Mode::Static && !args.no_optimize);
    if optimize {
        let r = whittle_passes::cleanup::run_cleanup(
            &mut model,
            &whittle_passes::cleanup::CleanupOptions::default(),
            &mut PassContext::default(),
        )
        .with_context(|| {
            format!(
                "{}: clean-up before quantizing failed",
                args.input.display()
            )
        })?;
        notes.push(format!(
            "clean-up first: {} → {} nodes (fold BatchNorm, constants, dead code; --no-optimize skips it)",
            r.before.nodes, r.after.nodes
        ));
    }
    let shapes = ir_overrides(&args, &model);
    t.load = started.elapsed().as_secs_f64();
    let step = Instant::now();
    let mut calib = match &args.calib {
        Some(path) if statistics_wanted => Some(calibrate::statistics(
            &model,
            &opts,
            path,
            prefetch.take().unwrap_or_else(calibrate::Prefetch::none),
            &calib_backend,
            args.json || args.quiet,
            &mut notes,
        )?),
        _ => None,
    };
    if let (true, Some(path)) = (opts.gptq, &args.calib) {
        let data = calib.get_or_insert_with(Default::default);
        data.hessians = gptq_moments::hessians(
            &model,
            &opts,
            path,
            &calib_backend,
            args.json || args.quiet,
            &mut notes,
        )?;
    }
    if let (true, Some(path)) = (opts.bias_correction, &args.calib) {
        let data = calib.get_or_insert_with(Default::default);
        calibrate::means(&model, &opts, path, &calib_backend, data, &mut notes)?;
    }
    t.calibrate = step.elapsed().as_secs_f64();
    let step = Instant::now();
    let float_model = model.clone();
    let mut report = quantize::quantize(&mut model, &opts, &shapes, calib.as_ref())
        .with_context(|| format!("{}: cannot quantize", args.input.display()))?;
    whittle_ir::verify::verify(&model).with_context(|| {
        "the quantized model is invalid (a bug in whittle quantize)".to_string()
    })?;
    let mut speed = None;
    let mut decision = None;
    if args.no_slower {
        let inputs = no_slower::Inputs {
            original: &original,
            float_model: &float_model,
            opts: &opts,
            shapes: &shapes,
            calib: calib.as_ref(),
            backend: &args.backend,
        };
        let (m, r, d, s) = no_slower::apply(&inputs, model, report)?;
        (model, report, decision, speed) = (m, r, Some(d), Some(s));
    }
    t.quantize = step.elapsed().as_secs_f64();
    let step = Instant::now();
    let save = match &args.output {
        Some(out) => Some(
            whittle_ir::save(&model, out, &SaveOptions::default())
                .with_context(|| format!("{}: cannot write the quantized model", out.display()))?,
        ),
        None => None,
    };
    t.save = step.elapsed().as_secs_f64();
    let step = Instant::now();
    let error = match &args.calib {
        Some(path) if !args.no_measure => Some(calibrate::measure(
            &float_model,
            &model,
            &report,
            path,
            &args.backend,
            &mut notes,
        )?),
        _ => None,
    };
    if args.check_speed && speed.is_none() {
        speed = Some(check_speed(&original, &model, &args.backend)?);
    }
    t.measure = step.elapsed().as_secs_f64();
    t.total = started.elapsed().as_secs_f64();
    if args.json {
        return print_json(&JsonReport {
            input: &args.input,
            output: args.output.as_deref(),
            options: &opts,
            seconds: t,
            notes: &notes,
            report: &report,
            error: error.as_ref(),
            save: save.as_ref(),
            speed: speed.as_ref(),
            no_slower: decision.as_ref(),
        });
    }
    print_notes(&notes);
    print::report(&args, &report, error.as_ref(), save.as_ref(), &t);
    if let Some(s) = &speed {
        let verdict = if s.ratio > 1.0 {
            format!(
                "{:.2}× SLOWER than the input — with weight-only quantization the runtime dequantizes \
                 every weight on every run; --mode static runs integer kernels",
                s.ratio
            )
        } else {
            format!("{:.2}× faster than the input", 1.0 / s.ratio)
        };
        println!(
            "speed ({}, batch 1, median of 20 runs): input {:.3} ms, quantized {:.3} ms: {verdict}",
            s.backend, s.float_ms, s.quantized_ms
        );
    }
    Ok(())
}

/// The `--shape NAME=DIMS` overrides that name whole inputs, for MAC counting.
fn ir_overrides(args: &QuantizeArgs, model: &whittle_ir::Model) -> ShapeOverrides {
    let mut o = ShapeOverrides::default();
    let inputs: Vec<&str> = model.graph.input_names().collect();
    for s in &args.backend.shapes {
        if let Ok(ov) = whittle_runtime::parse_shape_override(s)
            && inputs.contains(&ov.name.as_str())
        {
            o.inputs
                .insert(ov.name, ov.dims.iter().map(|&d| d as u64).collect());
        }
    }
    o
}
