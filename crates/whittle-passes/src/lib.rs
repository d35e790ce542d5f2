//! Rewrite passes over the whittle IR and the manager that runs them.
//!
//! Invariants:
//! - every pass ends in a verified model: [`PassManager::run`] calls
//!   `whittle_ir::verify::verify` after each pass and turns a failure into an error naming
//!   the pass, so a broken rewrite never reaches a file;
//! - a pass reports what it did, what it skipped and why ([`PassReport`]); reports are data
//!   the CLI prints as a table or JSON.
pub mod cleanup;
mod im2col;
pub mod lower;
pub mod merge;
pub mod opset;
pub mod prune;
pub mod quantize;

use whittle_ir::Model;

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PassReport {
    pub pass: String,
    /// One line per change made.
    pub changes: Vec<String>,
    /// One line per node left alone, with the reason.
    pub skipped: Vec<String>,
    pub nodes_before: usize,
    pub nodes_after: usize,
}

/// Errors a pass or the manager can return; each names the pass.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("pass {pass}: {message}")]
    Failed { pass: String, message: String },
    #[error("pass {pass} produced an invalid model (a bug in the pass): {source}")]
    Broke {
        pass: String,
        source: whittle_ir::verify::VerifyError,
    },
}

/// Options, progress and shared data a pass may use.
#[derive(Default)]
pub struct PassContext {
    /// Messages for the user (e.g. "skipped node X: unknown op").
    pub log: Vec<String>,
}

/// One rewrite of a model.
pub trait Pass {
    fn name(&self) -> &'static str;
    /// Rewrites `model`; collect the rewrites first, then apply them in one batch (no
    /// `NodeIndex` outlives a mutation).
    fn run(&self, model: &mut Model, cx: &mut PassContext) -> Result<PassReport, PassError>;
}

/// Runs passes in order, verifying the model after each one.
#[derive(Default)]
pub struct PassManager {
    passes: Vec<Box<dyn Pass>>,
}

impl PassManager {
    pub fn new() -> PassManager {
        PassManager::default()
    }

    pub fn add(&mut self, pass: Box<dyn Pass>) -> &mut PassManager {
        self.passes.push(pass);
        self
    }

    /// Runs every pass; stops at the first error.
    pub fn run(
        &self,
        model: &mut Model,
        cx: &mut PassContext,
    ) -> Result<Vec<PassReport>, PassError> {
        let mut reports = Vec::new();
        for pass in &self.passes {
            let before = count_nodes(model);
            let mut report = pass.run(model, cx)?;
            whittle_ir::verify::verify(model).map_err(|source| PassError::Broke {
                pass: pass.name().to_string(),
                source,
            })?;
            report.pass = pass.name().to_string();
            report.nodes_before = before;
            report.nodes_after = count_nodes(model);
            reports.push(report);
        }
        Ok(reports)
    }
}

/// Nodes in the main graph and every subgraph.
pub fn count_nodes(model: &Model) -> usize {
    let mut n = 0;
    model.graph.walk(&mut |g, _| n += g.node_count());
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    struct DropFirstNode;
    impl Pass for DropFirstNode {
        fn name(&self) -> &'static str {
            "drop-first-node"
        }
        fn run(&self, model: &mut Model, _: &mut PassContext) -> Result<PassReport, PassError> {
            let first: Vec<_> = model.graph.nodes().map(|(ix, _)| ix).take(1).collect();
            model.graph.remove_nodes(&first);
            Ok(PassReport::default())
        }
    }

    struct Nothing;
    impl Pass for Nothing {
        fn name(&self) -> &'static str {
            "nothing"
        }
        fn run(&self, _: &mut Model, _: &mut PassContext) -> Result<PassReport, PassError> {
            Ok(PassReport::default())
        }
    }

    fn digits() -> Model {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/digits_cnn.onnx");
        Model::load(&path).unwrap()
    }

    #[test]
    fn a_pass_that_breaks_the_graph_is_reported_by_name() {
        let mut m = digits();
        let mut pm = PassManager::new();
        pm.add(Box::new(Nothing)).add(Box::new(DropFirstNode));
        let e = pm
            .run(&mut m, &mut PassContext::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("pass drop-first-node produced an invalid model"),
            "{e}"
        );
        assert!(e.contains("\"conv1_out\" is not produced"), "{e}");
    }

    #[test]
    fn reports_count_nodes() {
        let mut m = digits();
        let n = count_nodes(&m);
        let mut pm = PassManager::new();
        pm.add(Box::new(Nothing));
        let r = pm.run(&mut m, &mut PassContext::default()).unwrap();
        assert_eq!(
            (r[0].pass.as_str(), r[0].nodes_before, r[0].nodes_after),
            ("nothing", n, n)
        );
    }
}
