//! Declares the `loom` cfg, so that `RUSTFLAGS="--cfg loom"` model builds pass the cfg checker.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(loom)");
}
