//! Builds the browser client without cargo-leptos: compiles `app` to wasm32 with `hydrate`,
//! runs wasm-bindgen (as a library, so nothing has to be installed), optionally shrinks the
//! result with `wasm-opt`, copies the stylesheet and assets into the site folder, and
//! fingerprints the client: content-hashed copies (`switchyard.<hash>.js`, `…_bg.wasm`,
//! `….css`) with brotli and gzip beside each, named in `pkg/manifest.txt` for the server.
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
    copy_static(&root, site_root, &pkg)?;
    let name = fingerprint(&pkg, release)?;
    eprintln!("==> site ready in {} (client {name})", site_root.display());
    Ok(())
}

/// The file the server reads the fingerprinted name from (`output_name=switchyard.<hash>`).
const MANIFEST: &str = "manifest.txt";

/// Content-hashed copies of the client's three files under one name (the hash covers all three,
/// so a page never pairs new JavaScript with an old module), each with a `.br` and `.gz` beside
/// it; older fingerprinted copies are removed. Returns the name. Compression runs only when the
/// name is new: brotli at its best setting for release builds, a quick one for dev builds.
fn fingerprint(pkg: &Path, release: bool) -> anyhow::Result<String> {
    use sha2::Digest as _;
    let files = [
        (format!("{OUTPUT_NAME}.js"), ".js"),
        (format!("{OUTPUT_NAME}_bg.wasm"), "_bg.wasm"),
        (format!("{OUTPUT_NAME}.css"), ".css"),
    ];
    let mut hasher = sha2::Sha256::new();
    let mut contents = Vec::new();
    for (file, _) in &files {
        let bytes = std::fs::read(pkg.join(file)).with_context(|| format!("reading {file}"))?;
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
        contents.push(bytes);
    }
    let hash = hex_prefix(&hasher.finalize(), 10);
    let name = format!("{OUTPUT_NAME}.{hash}");
    for entry in std::fs::read_dir(pkg)? {
        let file = entry?.file_name().to_string_lossy().to_string();
        if is_fingerprinted(&file)
            && !file.starts_with(&format!("{name}."))
            && !file.starts_with(&format!("{name}_"))
        {
            std::fs::remove_file(pkg.join(&file))?;
        }
    }
    let quality = if release { 11 } else { 4 };
    for ((_, suffix), bytes) in files.iter().zip(&contents) {
        let out = pkg.join(format!("{name}{suffix}"));
        if std::fs::metadata(out.with_extension(ext_with(&out, "br"))).is_ok() {
            continue;
        }
        std::fs::write(&out, bytes)?;
        let started = std::time::Instant::now();
        let (br, gz) = compress(bytes, quality)?;
        std::fs::write(out.with_extension(ext_with(&out, "gz")), &gz)?;
        std::fs::write(out.with_extension(ext_with(&out, "br")), &br)?;
        eprintln!(
            "    {name}{suffix}: {} B, gzip {} B, brotli {} B ({} ms)",
            bytes.len(),
            gz.len(),
            br.len(),
            started.elapsed().as_millis()
        );
    }
    std::fs::write(pkg.join(MANIFEST), format!("output_name={name}\n"))?;
    Ok(name)
}

/// `file.js` + `br` → `js.br` (for `with_extension`, which replaces only the last one).
fn ext_with(path: &Path, more: &str) -> String {
    let ext = path.extension().map(|e| e.to_string_lossy().to_string()).unwrap_or_default();
    format!("{ext}.{more}")
}

/// `switchyard.<10 hex>.…` or `switchyard.<10 hex>_bg.wasm…`.
fn is_fingerprinted(file: &str) -> bool {
    let Some(rest) = file.strip_prefix(&format!("{OUTPUT_NAME}.")) else { return false };
    rest.len() > 10
        && rest.as_bytes()[..10].iter().all(u8::is_ascii_hexdigit)
        && matches!(rest.as_bytes()[10], b'.' | b'_')
}

fn hex_prefix(bytes: &[u8], n: usize) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()[..n].to_string()
}

/// Brotli (window 2^22) and gzip (level 9) of `bytes`.
fn compress(bytes: &[u8], quality: u32) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    use std::io::Write as _;
    let mut br = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut br, 64 * 1024, quality, 22);
        w.write_all(bytes)?;
        w.flush()?;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes)?;
    Ok((br, gz.finish()?))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn site(js: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("switchyard.js"), js).expect("js");
        std::fs::write(dir.path().join("switchyard_bg.wasm"), b"\0asm module".repeat(500))
            .expect("wasm");
        std::fs::write(dir.path().join("switchyard.css"), "body { color: red }").expect("css");
        dir
    }

    fn manifest(dir: &Path) -> String {
        std::fs::read_to_string(dir.join(MANIFEST)).expect("manifest")
    }

    #[test]
    fn fingerprinted_copies_decompress_to_the_originals_and_replace_older_ones() {
        let dir = site("export default function init() {}");
        let first = fingerprint(dir.path(), false).expect("fingerprint");
        assert!(first.starts_with("switchyard.") && first.len() == "switchyard.".len() + 10);
        assert_eq!(manifest(dir.path()), format!("output_name={first}\n"));
        for (suffix, original) in [
            (".js", "switchyard.js"),
            ("_bg.wasm", "switchyard_bg.wasm"),
            (".css", "switchyard.css"),
        ] {
            let raw = std::fs::read(dir.path().join(original)).expect("original");
            let copy = std::fs::read(dir.path().join(format!("{first}{suffix}"))).expect("copy");
            assert_eq!(copy, raw, "{suffix}");
            let mut un_br = Vec::new();
            brotli::Decompressor::new(
                &std::fs::read(dir.path().join(format!("{first}{suffix}.br"))).expect("br")[..],
                4096,
            )
            .read_to_end(&mut un_br)
            .expect("brotli decodes");
            assert_eq!(un_br, raw, "{suffix}.br");
            let mut un_gz = Vec::new();
            flate2::read::GzDecoder::new(
                &std::fs::read(dir.path().join(format!("{first}{suffix}.gz"))).expect("gz")[..],
            )
            .read_to_end(&mut un_gz)
            .expect("gzip decodes");
            assert_eq!(un_gz, raw, "{suffix}.gz");
        }
        // Same content, same name; new content, a new name and the old copies gone.
        assert_eq!(fingerprint(dir.path(), false).expect("again"), first);
        std::fs::write(dir.path().join("switchyard.js"), "export default function init() { 1 }")
            .expect("js");
        let second = fingerprint(dir.path(), false).expect("changed");
        assert_ne!(second, first);
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .filter(|f| is_fingerprinted(f))
            .collect();
        assert_eq!(left.len(), 9, "three files and their .br and .gz: {left:?}");
        assert!(left.iter().all(|f| f.starts_with(&second)), "{left:?}");
        assert!(!is_fingerprinted("switchyard.css") && !is_fingerprinted("switchyard_bg.wasm"));
    }
}
