//! compress's settings check: the merged recipe (file + flags) becomes a [`Plan`], with
//! every default filled in so an emitted recipe keeps meaning the same pipeline even if a
//! default changes later, and every inconsistent combination refused with the flag to add.
use super::recipe::Recipe;
use anyhow::{Result, bail};
use whittle_passes::quantize::{Mode, QuantType, QuantizeOptions};

/// The checked settings.
pub struct Plan {
    pub cleanup: bool,
    pub prune: Option<f64>,
    /// Re-fit the pruned layers' consumers by least squares on `recipe.calib`.
    pub reconstruct: bool,
    pub quantize: Option<QuantizeOptions>,
    /// Time the quantized model and keep op types in float until it is not slower.
    pub no_slower: bool,
    pub recipe: Recipe,
}

/// Checks the settings and fills in the defaults.
pub fn plan(mut recipe: Recipe) -> Result<Plan> {
    if let Some(r) = recipe.prune
        && !(0.0..1.0).contains(&r)
    {
        bail!("--prune {r}: expected a fraction in 0..1");
    }
    if recipe.max_drop.is_some() && recipe.eval.is_none() {
        bail!("--max-drop needs a labelled set to measure accuracy on: --eval FILE.npz");
    }
    if let Some(d) = recipe.max_drop
        && (d.is_nan() || d < 0.0)
    {
        bail!("--max-drop {d}: expected a number of percentage points ≥ 0");
    }
    let reconstruct = recipe.reconstruct == Some(true);
    if reconstruct && recipe.prune.is_none() {
        bail!("--reconstruct re-fits the layers pruning changed: give --prune R");
    }
    if reconstruct && recipe.calib.is_none() {
        bail!("--reconstruct needs --calib FILE.npz (the data the layers are re-fitted on)");
    }
    let bias_correction = recipe.bias_correction == Some(true);
    let gptq = recipe.gptq == Some(true);
    let no_slower = recipe.no_slower == Some(true);
    // `false` and "not set" mean the same; only `true` is written back, so recipes
    // emitted before these keys existed stay byte-identical.
    recipe.reconstruct = reconstruct.then_some(true);
    recipe.bias_correction = bias_correction.then_some(true);
    recipe.gptq = gptq.then_some(true);
    recipe.no_slower = no_slower.then_some(true);
    let mode = match recipe.mode.as_deref() {
        None => None,
        Some("weight") => Some(Mode::Weight),
        Some("dynamic") => Some(Mode::Dynamic),
        Some("static") => Some(Mode::Static),
        Some(m) => bail!("--mode {m:?}: expected weight, dynamic or static"),
    };
    let quant = recipe
        .quantize
        .clone()
        .unwrap_or_else(|| "int8".to_string());
    let mut opts = QuantizeOptions::default();
    match quant.as_str() {
        "none" => {
            if bias_correction {
                bail!(
                    "--bias-correction corrects quantized layers: it needs --quantize int8 or int4"
                );
            }
            if no_slower {
                bail!(
                    "--no-slower chooses what to quantize: it needs --quantize int8, int4 or fp16"
                );
            }
            if gptq {
                bail!("--gptq rounds quantized weights: it needs --quantize int8 or int4");
            }
            recipe.cleanup = Some(recipe.cleanup.unwrap_or(true));
            recipe.quantize = Some("none".into());
            return Ok(Plan {
                cleanup: recipe.cleanup.unwrap_or(true),
                prune: recipe.prune,
                reconstruct,
                quantize: None,
                no_slower,
                recipe,
            });
        }
        "fp16" => {
            if mode.is_some() {
                bail!("--quantize fp16 takes no --mode (weights and compute become float16)");
            }
            opts.mode = Mode::Fp16;
            // A drop-in replacement: float32 inputs and outputs, Casts inside.
            opts.keep_io_types = true;
        }
        "int8" => {
            let default = if recipe.calib.is_some() {
                Mode::Static
            } else {
                Mode::Weight
            };
            opts.mode = mode.unwrap_or(default);
        }
        "int4" => {
            opts.weight_type = QuantType::Int4;
            opts.mode = mode.unwrap_or(Mode::Weight);
            if opts.mode != Mode::Weight {
                bail!("--quantize int4 is weight-only: use --mode weight");
            }
        }
        q => bail!("--quantize {q:?}: expected int8, int4, fp16 or none"),
    }
    if opts.mode == Mode::Static && recipe.calib.is_none() {
        bail!("--mode static needs a calibration set: --calib FILE.npz");
    }
    if bias_correction {
        // The same limits as `whittle quantize --bias-correction`.
        if !matches!(opts.mode, Mode::Weight | Mode::Static) {
            bail!("--bias-correction is for --mode weight or --mode static");
        }
        if recipe.calib.is_none() {
            bail!("--bias-correction measures layer inputs on a calibration set: --calib FILE.npz");
        }
        opts.bias_correction = true;
    }
    if gptq {
        // The same limits as `whittle quantize --gptq`.
        if opts.mode != Mode::Weight {
            bail!("--gptq is for --mode weight (it chooses how weights are rounded)");
        }
        if recipe.calib.is_none() {
            bail!("--gptq measures each layer's inputs on a calibration set: --calib FILE.npz");
        }
        opts.gptq = true;
    }
    recipe.cleanup = Some(recipe.cleanup.unwrap_or(true));
    recipe.quantize = Some(quant);
    recipe.mode = match opts.mode {
        Mode::Weight => Some("weight".into()),
        Mode::Dynamic => Some("dynamic".into()),
        Mode::Static => Some("static".into()),
        Mode::Fp16 => None,
    };
    Ok(Plan {
        cleanup: recipe.cleanup.unwrap_or(true),
        prune: recipe.prune,
        reconstruct,
        quantize: Some(opts),
        no_slower,
        recipe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(r: Recipe) -> String {
        match plan(r) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn new_options_name_what_they_need() {
        let calib = Some(std::path::PathBuf::from("c.npz"));
        let e = err(Recipe {
            prune: Some(0.3),
            reconstruct: Some(true),
            ..Default::default()
        });
        assert!(e.contains("--reconstruct needs --calib"), "{e}");
        let e = err(Recipe {
            reconstruct: Some(true),
            calib: calib.clone(),
            ..Default::default()
        });
        assert!(e.contains("--prune"), "{e}");
        let e = err(Recipe {
            bias_correction: Some(true),
            ..Default::default()
        });
        assert!(e.contains("--calib"), "{e}");
        let e = err(Recipe {
            bias_correction: Some(true),
            quantize: Some("fp16".into()),
            calib: calib.clone(),
            ..Default::default()
        });
        assert!(e.contains("--mode weight or --mode static"), "{e}");
        let e = err(Recipe {
            no_slower: Some(true),
            quantize: Some("none".into()),
            ..Default::default()
        });
        assert!(e.contains("--no-slower"), "{e}");
        let e = err(Recipe {
            gptq: Some(true),
            calib: calib.clone(),
            ..Default::default()
        });
        assert!(e.contains("--gptq is for --mode weight"), "{e}");
        let p = plan(Recipe {
            gptq: Some(true),
            quantize: Some("int4".into()),
            calib,
            ..Default::default()
        })
        .unwrap();
        assert!(p.quantize.is_some_and(|o| o.gptq));
        assert_eq!(p.recipe.gptq, Some(true));
    }

    #[test]
    fn only_true_is_written_back() {
        let p = plan(Recipe {
            quantize: Some("int4".into()),
            calib: Some("c.npz".into()),
            bias_correction: Some(true),
            no_slower: Some(false),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.recipe.bias_correction, Some(true));
        assert_eq!(p.recipe.no_slower, None);
        assert!(p.quantize.is_some_and(|o| o.bias_correction));
    }
}
