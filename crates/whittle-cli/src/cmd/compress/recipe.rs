//! Compress recipes: the pipeline's steps and options as a TOML file, so a pipeline is
//! versioned with the model.
//!
//! Every key is optional; an unknown key is an error naming it (a typo must not silently
//! fall back to a default). Relative paths in a recipe are resolved against the recipe's
//! folder; `--emit-recipe` writes absolute paths, so the file works from anywhere.
//!
//! Keys (each also a flag): `cleanup` (bool, default true), `prune` (fraction),
//! `reconstruct` (bool; needs `prune` and `calib`), `quantize` (`int8` | `int4` | `fp16` |
//! `none`), `mode` (`weight` | `dynamic` | `static`), `bias_correction` (bool; weight or
//! static, needs `calib`), `gptq` (bool; weight mode, needs `calib`), `calib`, `eval` (paths), `max_drop` (points; needs `eval`),
//! `no_slower` (bool; needs quantization). The boolean steps are written only when true.
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The keys a recipe may hold (also the flags that override them).
pub const KEYS: &[&str] = &[
    "cleanup",
    "prune",
    "reconstruct",
    "quantize",
    "mode",
    "bias_correction",
    "gptq",
    "calib",
    "eval",
    "max_drop",
    "no_slower",
];

/// The pipeline's settings; `None` means "not set" (the defaults apply).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Run the clean-up passes first (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<bool>,
    /// Fraction of each prunable group's channels to remove.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<f64>,
    /// After pruning, re-fit the consumers of the pruned groups by least squares on `calib`
    /// (as `whittle prune --reconstruct`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconstruct: Option<bool>,
    /// `int8`, `int4`, `fp16` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantize: Option<String>,
    /// `weight`, `dynamic` or `static`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Shift each quantized layer's bias by its mean output error on `calib` (as
    /// `whittle quantize --bias-correction`; weight or static mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bias_correction: Option<bool>,
    /// Round weights with GPTQ against the layer inputs on `calib` (as `whittle quantize
    /// --gptq`; weight mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gptq: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calib: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval: Option<PathBuf>,
    /// Accuracy budget in percentage points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_drop: Option<f64>,
    /// Keep op types in float until the result is not slower than the input (as
    /// `whittle quantize --no-slower`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_slower: Option<bool>,
}

impl Recipe {
    /// Reads a recipe; relative paths become relative to the recipe's folder.
    pub fn load(path: &Path) -> Result<Recipe> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the recipe", path.display()))?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            anyhow::anyhow!("{}: not a TOML recipe: {}", path.display(), e.message())
        })?;
        for key in table.keys() {
            if !KEYS.contains(&key.as_str()) {
                bail!(
                    "{}: unknown key {key:?} in the recipe (known: {})",
                    path.display(),
                    KEYS.join(", ")
                );
            }
        }
        let mut recipe: Recipe = table.try_into().map_err(|e: toml::de::Error| {
            anyhow::anyhow!("{}: bad recipe: {}", path.display(), e.message())
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        for p in [&mut recipe.calib, &mut recipe.eval].into_iter().flatten() {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        Ok(recipe)
    }

    /// `self` with every setting `flags` has replacing the recipe's.
    /// `--quantize none` also drops the recipe's quantization settings (mode, bias
    /// correction, no-slower): they describe a step the flag removed, and keeping them
    /// would turn "run this recipe without quantizing" into an error.
    pub fn overridden_by(mut self, flags: Recipe) -> Recipe {
        if flags.quantize.as_deref() == Some("none") {
            (self.mode, self.bias_correction, self.gptq, self.no_slower) = (None, None, None, None);
        }
        Recipe {
            cleanup: flags.cleanup.or(self.cleanup),
            prune: flags.prune.or(self.prune),
            reconstruct: flags.reconstruct.or(self.reconstruct),
            quantize: flags.quantize.or(self.quantize),
            mode: flags.mode.or(self.mode),
            bias_correction: flags.bias_correction.or(self.bias_correction),
            gptq: flags.gptq.or(self.gptq),
            calib: flags.calib.or(self.calib),
            eval: flags.eval.or(self.eval),
            max_drop: flags.max_drop.or(self.max_drop),
            no_slower: flags.no_slower.or(self.no_slower),
        }
    }

    /// Writes the recipe as TOML (paths made absolute), atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut r = self.clone();
        for p in [&mut r.calib, &mut r.eval].into_iter().flatten() {
            if let Ok(abs) = std::path::absolute(&*p) {
                *p = abs;
            }
        }
        let text = toml::to_string(&r).context("cannot write the recipe as TOML")?;
        let text = format!(
            "# whittle compress recipe (keys: {})\n{text}",
            KEYS.join(", ")
        );
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("{}: cannot write the recipe", path.display()))?;
        std::io::Write::write_all(&mut tmp, text.as_bytes())?;
        tmp.persist(path)
            .with_context(|| format!("{}: cannot write the recipe", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_recipe() {
        let file = Recipe {
            prune: Some(0.5),
            quantize: Some("int4".into()),
            ..Default::default()
        };
        let flags = Recipe {
            quantize: Some("int8".into()),
            ..Default::default()
        };
        let r = file.overridden_by(flags);
        assert_eq!(r.prune, Some(0.5));
        assert_eq!(r.quantize.as_deref(), Some("int8"));
        let file = Recipe {
            mode: Some("static".into()),
            bias_correction: Some(true),
            no_slower: Some(true),
            ..Default::default()
        };
        let none = Recipe {
            quantize: Some("none".into()),
            ..Default::default()
        };
        let r = file.overridden_by(none);
        assert_eq!((r.mode, r.bias_correction, r.no_slower), (None, None, None));
    }

    #[test]
    fn new_keys_round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.toml");
        let r = Recipe {
            prune: Some(0.3),
            reconstruct: Some(true),
            quantize: Some("int4".into()),
            bias_correction: Some(true),
            calib: Some(dir.path().join("c.npz")),
            no_slower: Some(true),
            ..Default::default()
        };
        r.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for key in [
            "reconstruct = true",
            "bias_correction = true",
            "no_slower = true",
        ] {
            assert!(text.contains(key), "{text}");
        }
        assert_eq!(Recipe::load(&path).unwrap(), r);
    }
}
