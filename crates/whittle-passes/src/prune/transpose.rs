//! The ConvTranspose rule (PP-OCR det's upsampling head, U-Net decoders).
//!
//! A ConvTranspose weight is `[C_in, C_out / group, k…]` — the transpose of Conv's — so
//! its input channels index axis 0 (consumer) and its output channels axis 1 (producer);
//! the bias follows the output channels. Invariant: only `group = 1` is understood; a
//! grouped one blocks its input channels and opens a blocked output space, like a grouped
//! Conv that is not depthwise.
use super::groups::{Builder, Role};
use super::ops::{Rule, init_dims, input, open};
use whittle_ir::Node;

pub(super) fn conv_transpose(b: &mut Builder, n: &Node, label: &str) -> Rule {
    let w = input(n, 1).unwrap_or_default().to_string();
    let wd = init_dims(b, Some(&w)).ok_or("ConvTranspose weight is not an initializer")?;
    if wd.len() < 3 {
        return Err("ConvTranspose weight of rank < 3".into());
    }
    let group = n.attr_int("group").unwrap_or(1);
    let out_channels = u64::try_from(wd[1]).map_err(|_| "negative weight dim")?;
    if group != 1 {
        let why = format!("{label}: grouped ConvTranspose (group={group})");
        b.block_values(n.inputs(), &why);
        let size = out_channels.saturating_mul(group.max(1) as u64);
        let out = open(b, n, label, size, 1, wd.len());
        b.block(&out.segs, &why);
        return Ok(());
    }
    let x = input(n, 0).unwrap_or_default().to_string();
    if let Some(l) = b.layouts.get(&x).cloned() {
        if l.axis != 1 || l.run != 1 {
            return Err("input channels are not on axis 1".into());
        }
        b.register(&w, 0, &l, Role::Consumer, label);
    }
    let out = open(b, n, label, out_channels, 1, wd.len());
    b.register(&w, 1, &out, Role::Producer, label);
    if let Some(bias) = input(n, 2) {
        b.register(bias, 0, &out, Role::Bias, label);
    }
    Ok(())
}
