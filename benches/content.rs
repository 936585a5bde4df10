//! `cargo bench --bench content [-- DIR]`: what the content rules add to serving an
//! artifact. For each artifact, the time to scan it (`policy::content::scan`, default
//! limits) against the time the proxy already spends on every downloaded artifact, hashing
//! it with SHA-1, SHA-256 and SHA-512 (`server::upstream`), both over the compressed bytes
//! served, in MB/s. Without DIR: two synthetic artifacts (a JS-heavy npm tarball and a wheel
//! with a large native library). With DIR (`benches/content-sample.sh` fills one with real
//! npm tarballs under `npm/` and wheels under `pypi/`): every file there, and every finding
//! the rules make on them, which on legitimate packages are false positives.

use std::io::{Cursor, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use depfw::package::Ecosystem;
use depfw::policy::content::{scan, ContentConfig, Format};
use sha2::Digest as _;

/// Runs `f` until at least `min` has passed (at least twice); seconds per run.
fn time(min: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut runs = 0u32;
    while runs < 2 || start.elapsed() < min {
        f();
        runs += 1;
    }
    start.elapsed().as_secs_f64() / f64::from(runs)
}

fn hash_all(bytes: &[u8]) {
    let a = sha1::Sha1::digest(bytes);
    let b = sha2::Sha256::digest(bytes);
    let c = sha2::Sha512::digest(bytes);
    std::hint::black_box((a, b, c));
}

struct Totals {
    bytes: f64,
    scan: f64,
    hash: f64,
    files: usize,
    flagged: usize,
    /// Artifacts with something the rules read whole, and with native binaries.
    read: usize,
    native: usize,
}

fn measure(label: &str, format: Format, bytes: &[u8], cfg: &ContentConfig, t: &mut Totals) {
    let min = Duration::from_millis(100);
    let mut result = None;
    let scan_s = time(min, || result = Some(scan(format, Cursor::new(bytes), cfg)));
    let hash_s = time(min, || hash_all(bytes));
    let mb = bytes.len() as f64 / 1e6;
    let result = result.unwrap_or_default();
    let found = result.findings;
    println!(
        "{label:<60} {mb:>8.2} MB  scan {:>8.1} MB/s  hash {:>7.1} MB/s  findings {}",
        mb / scan_s,
        mb / hash_s,
        found.len()
    );
    if !result.read.is_empty() {
        println!("    read: {}", result.read.join(", "));
        t.read += 1;
    }
    if result.native_count > 0 {
        t.native += 1;
    }
    for f in &found {
        println!("    {}: {}", f.code, f.message);
    }
    t.bytes += mb;
    t.scan += scan_s;
    t.hash += hash_s;
    t.files += 1;
    t.flagged += usize::from(!found.is_empty());
}

/// Deterministic pseudo-random bytes (xorshift), incompressible like machine code.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn synthetic_tarball() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    // Source-like text that compresses about 4:1, like real npm tarballs, different in
    // every file.
    let js = |seed: u64| -> Vec<u8> {
        let words: Vec<String> = noise(2048, seed)
            .chunks_exact(2)
            .map(|c| format!("v{:x}", u16::from_le_bytes([c[0], c[1]]) % 2048))
            .collect();
        words
            .chunks_exact(6)
            .map(|w| {
                format!(
                    "  const {} = {}({}, {}) + {}.{};\n",
                    w[0], w[1], w[2], w[3], w[4], w[5]
                )
            })
            .collect::<String>()
            .into_bytes()
    };
    let add = |tar: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, path, data).expect("tar");
    };
    add(
        &mut tar,
        "package/package.json",
        br#"{"name":"big","scripts":{"postinstall":"node install.js"}}"#,
    );
    add(&mut tar, "package/install.js", &js(0));
    for i in 0..5000 {
        add(&mut tar, &format!("package/lib/m{i}.js"), &js(i + 1));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar.into_inner().expect("tar")).expect("gz");
    gz.finish().expect("gz")
}

fn synthetic_wheel() -> Vec<u8> {
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut so = b"\x7fELF\x02\x01\x01\x00".to_vec();
    so.extend(noise(30 << 20, 0));
    z.start_file("pkg/_native.cpython-312-x86_64-linux-gnu.so", opts)
        .expect("zip");
    z.write_all(&so).expect("zip");
    for i in 0..1000 {
        z.start_file(format!("pkg/m{i}.py"), opts).expect("zip");
        z.write_all(&b"def f(x):\n    return [y * 2 for y in x]\n".repeat(50))
            .expect("zip");
    }
    z.start_file("pkg-1.0.dist-info/RECORD", opts).expect("zip");
    z.finish().expect("zip").into_inner()
}

fn main() {
    let cfg = ContentConfig::default();
    let mut t = Totals {
        bytes: 0.0,
        scan: 0.0,
        hash: 0.0,
        files: 0,
        flagged: 0,
        read: 0,
        native: 0,
    };
    let dir = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    match dir {
        None => {
            measure(
                "synthetic npm tarball (5,000 JS files, postinstall)",
                Format::NpmTarball,
                &synthetic_tarball(),
                &cfg,
                &mut t,
            );
            measure(
                "synthetic wheel (30 MB native library, 1,000 modules)",
                Format::Wheel,
                &synthetic_wheel(),
                &cfg,
                &mut t,
            );
        }
        Some(dir) => {
            for (sub, eco) in [("npm", Ecosystem::Npm), ("pypi", Ecosystem::PyPI)] {
                let Ok(entries) = std::fs::read_dir(Path::new(&dir).join(sub)) else {
                    continue;
                };
                let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
                files.sort();
                for path in files {
                    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                    let Some(name) = name else { continue };
                    let Some(format) = Format::of(eco, &name) else {
                        continue;
                    };
                    let Ok(bytes) = std::fs::read(&path) else {
                        continue;
                    };
                    measure(&format!("{sub}/{name}"), format, &bytes, &cfg, &mut t);
                }
            }
        }
    }
    println!(
        "\n{} artifacts, {:.1} MB: scan {:.1} MB/s, hash (SHA-1+256+512, already paid) {:.1} MB/s; \
         scanning adds {:.2}x the hashing time ({:.1} ms per MB); {} with findings; \
         {} with install hooks, .pth files, setup.py or build.rs read; {} with native binaries",
        t.files,
        t.bytes,
        t.bytes / t.scan,
        t.bytes / t.hash,
        t.scan / t.hash,
        t.scan * 1e3 / t.bytes,
        t.flagged,
        t.read,
        t.native
    );
}
