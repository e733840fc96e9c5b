//! Builds the browser client without cargo-leptos: compiles `app` to wasm32 with `hydrate`,
//! runs wasm-bindgen (as a library, so nothing has to be installed), optionally shrinks the
//! result with `wasm-opt`, and copies the stylesheet and assets into the site folder.
//!
//! Usage: `cargo run -p xtask -- site [--release] [--site-root target/site]`

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

const OUTPUT_NAME: &str = "switchyard";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("site") => {
            let release = args.iter().any(|a| a == "--release");
            let site_root = args
                .iter()
                .position(|a| a == "--site-root")
                .and_then(|i| args.get(i + 1))
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_root().join("target/site"));
            build_site(release, &site_root)
        }
        _ => bail!("usage: cargo run -p xtask -- site [--release] [--site-root DIR]"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn build_site(release: bool, site_root: &Path) -> anyhow::Result<()> {
    let root = workspace_root();
    // A separate target dir: the wasm build's feature set would otherwise force rebuilds of
    // shared build-time crates each time the server is built.
    let target_dir = root.join("target/front");
    let profile = if release { "wasm-release" } else { "dev" };
    eprintln!("==> compiling the browser client (profile {profile})");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["build", "-p", "app", "--lib", "--target", "wasm32-unknown-unknown"])
        .args(["--no-default-features", "--features", "hydrate", "--profile", profile])
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("compiling the browser client failed");
    }
    let dir = if profile == "dev" { "debug" } else { profile };
    let wasm = target_dir.join("wasm32-unknown-unknown").join(dir).join("app.wasm");
    let pkg = site_root.join("pkg");
    std::fs::create_dir_all(&pkg).with_context(|| format!("creating {}", pkg.display()))?;

    let bg = pkg.join(format!("{OUTPUT_NAME}_bg.wasm"));
    // One stamp for whichever profile built the files last, so switching profiles rebuilds.
    let stamp = pkg.join(".build.stamp");
    let fresh = format!("{profile}:{}", stamp_of(&wasm)?);
    if bg.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(fresh.as_str()) {
        eprintln!("==> bindings are up to date");
    } else {
        bindgen(&wasm, &pkg, release)?;
        std::fs::write(&stamp, &fresh)?;
    }
    copy_static(&root, site_root, &pkg)
}

/// Size and modification time of the compiled module: a rebuild changes at least one.
fn stamp_of(wasm: &Path) -> anyhow::Result<String> {
    let meta = std::fs::metadata(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let modified = meta.modified()?.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Ok(format!("{}:{}", meta.len(), modified.as_nanos()))
}

fn bindgen(wasm: &Path, pkg: &Path, release: bool) -> anyhow::Result<()> {
    eprintln!("==> generating JavaScript bindings");
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(wasm)
        .web(true)?
        .out_name(OUTPUT_NAME)
        .debug(!release)
        .keep_debug(false)
        .generate(pkg)
        .context("wasm-bindgen failed")?;

    let bg = pkg.join(format!("{OUTPUT_NAME}_bg.wasm"));
    if release {
        optimise(&bg)?;
    }
    // cargo-leptos names the file without `_bg`; serve both so either build of the server works.
    std::fs::copy(&bg, pkg.join(format!("{OUTPUT_NAME}.wasm")))?;
    Ok(())
}

fn copy_static(root: &Path, site_root: &Path, pkg: &Path) -> anyhow::Result<()> {
    std::fs::copy(root.join("style/main.css"), pkg.join(format!("{OUTPUT_NAME}.css")))
        .context("copying style/main.css")?;
    let assets = root.join("style/assets");
    if assets.is_dir() {
        for entry in std::fs::read_dir(&assets)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::copy(entry.path(), site_root.join(entry.file_name()))?;
            }
        }
    }
    for f in [
        format!("{OUTPUT_NAME}_bg.wasm"),
        format!("{OUTPUT_NAME}.js"),
        format!("{OUTPUT_NAME}.css"),
    ] {
        let len = std::fs::metadata(pkg.join(&f)).map(|m| m.len()).unwrap_or(0);
        eprintln!("    {f}: {len} bytes");
    }
    eprintln!("==> site ready in {}", site_root.display());
    Ok(())
}

/// Runs `wasm-opt -Oz` when one is available ($WASM_OPT, PATH, or the npm `binaryen` package
/// the run script installs under target/tools). Debian's binaryen 108 breaks the module, so a
/// version below 110 is skipped with a warning.
fn optimise(wasm: &Path) -> anyhow::Result<()> {
    let root = workspace_root();
    let candidates = [
        std::env::var("WASM_OPT").ok().map(PathBuf::from),
        Some(root.join("target/tools/node_modules/.bin/wasm-opt")),
        Some(PathBuf::from("wasm-opt")),
    ];
    for c in candidates.into_iter().flatten() {
        let Ok(out) = Command::new(&c).arg("--version").output() else { continue };
        let version = String::from_utf8_lossy(&out.stdout).to_string();
        let major: u32 = version.split_whitespace().find_map(|w| w.parse().ok()).unwrap_or(0);
        if major < 110 {
            eprintln!(
                "    skipping {} ({}): versions before 110 break the module",
                c.display(),
                version.trim()
            );
            continue;
        }
        eprintln!("==> optimising with {} ({})", c.display(), version.trim());
        let tmp = wasm.with_extension("opt.wasm");
        let status = Command::new(&c)
            .arg("-Oz")
            .args([
                "--enable-bulk-memory",
                "--enable-nontrapping-float-to-int",
                "--enable-sign-ext",
            ])
            .args(["--enable-reference-types", "--enable-multivalue", "--enable-mutable-globals"])
            .arg(wasm)
            .arg("-o")
            .arg(&tmp)
            .status()?;
        if !status.success() {
            bail!("wasm-opt failed");
        }
        std::fs::rename(&tmp, wasm)?;
        return Ok(());
    }
    eprintln!("    no wasm-opt found: serving the unoptimised client");
    Ok(())
}
