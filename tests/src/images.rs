//! Container images for tests, built offline from the host's Debian
//! packages (scripts/install-deps installs redis-server, nginx, python3,
//! busybox-static): a program, its shared libraries (from `ldd`, the ELF
//! interpreter included) and data files become a gzip layer; config,
//! manifest and index are written as blobs named by their sha256, in any of
//! the four forms `xc-convert wrap` reads ([`Form`]).
//!
//! Layers are deterministic (sorted members, mtime 0, owner 0 unless a
//! directory asks for another), so the same host gives the same digests.
//! Images are built once per test process into [`images_dir`] and shared by
//! every test in it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The redis user and group of the redis image (Docker's official image uses 999 too).
pub const REDIS_UID: u32 = 999;
/// Debian's www-data, the user nginx's workers run as.
pub const WWW_DATA_UID: u32 = 33;
/// The page the nginx image serves at `/`.
pub const NGINX_INDEX_BODY: &str = "<h1>xc-convert: nginx in its own kernel</h1>\n";
/// The python image's program (its output: [`python_expected_output`]).
pub const PYTHON_SCRIPT: &str = r#"import hashlib

def primes_below(n):
    sieve = bytearray([1]) * n
    sieve[0:2] = b"\0\0"
    for i in range(2, int(n ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(range(i * i, n, i)))
    return [i for i, p in enumerate(sieve) if p]

digest = hashlib.sha256(b"xc-convert container\n" * 1000).hexdigest()
print(f"sha256={digest} primes={sum(primes_below(100000))}", flush=True)
"#;

/// What the python image prints, computed here independently.
pub fn python_expected_output() -> String {
    let digest = hex::encode(Sha256::digest("xc-convert container\n".repeat(1000)));
    let n = 100_000usize;
    let mut sieve = vec![true; n];
    sieve[0] = false;
    sieve[1] = false;
    let mut i = 2;
    while i * i < n {
        if sieve[i] {
            (i * i..n).step_by(i).for_each(|j| sieve[j] = false);
        }
        i += 1;
    }
    let sum: usize = (0..n).filter(|i| sieve[*i]).sum();
    format!("sha256={digest} primes={sum}")
}

/// Where built images are kept: `$XC_TEST_IMAGES`, else target/xc-test-images.
pub fn images_dir() -> PathBuf {
    let dir = std::env::var_os("XC_TEST_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace().join("target").join("xc-test-images"));
    // Created here: tests make scratch directories in it before any image
    // is built (a fresh clone has none).
    fs::create_dir_all(&dir).expect("create the test images directory");
    dir
}

/// The container images the tests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestImage {
    /// redis-server as user redis, port 6379.
    Redis,
    /// nginx (master as root, workers as www-data), port 80, serving [`NGINX_INDEX_BODY`].
    Nginx,
    /// python3 and its standard library running [`PYTHON_SCRIPT`] as user app.
    Python,
    /// Static busybox in two layers: layer 2 whites out `/etc/removed` and
    /// makes `/data` opaque, so `/data` holds only `new`.
    Whiteouts,
}

/// Images `wrap` must refuse, each for one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadImage {
    /// The layer blob has one byte flipped.
    DigestMismatch,
    /// The layer has a member `../../escape`.
    Traversal,
    /// The index has only a linux/arm64 manifest.
    NoAmd64,
    /// The config has neither Entrypoint nor Cmd.
    NoCommand,
    /// The Entrypoint `/usr/bin/missing-server` is not in the rootfs.
    MissingEntrypoint,
}

/// How an image is stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// An OCI image layout directory.
    OciDir,
    /// An OCI image layout in a tar.
    OciTar,
    /// `docker save` before docker 25: manifest.json, `<id>/layer.tar`, `<sha>.json`.
    DockerLegacy,
    /// `docker save` since docker 25: an OCI layout (uncompressed layers) plus manifest.json.
    DockerOci,
}

impl Form {
    fn suffix(self) -> &'static str {
        match self {
            Form::OciDir => "oci",
            Form::OciTar => "oci.tar",
            Form::DockerLegacy => "docker.tar",
            Form::DockerOci => "docker-oci.tar",
        }
    }
}

/// A test image in the given form, built on first use in this process.
pub fn image(which: TestImage, form: Form) -> PathBuf {
    let name = match which {
        TestImage::Redis => "redis",
        TestImage::Nginx => "nginx",
        TestImage::Python => "python",
        TestImage::Whiteouts => "whiteouts",
    };
    cached(&format!("{name}-{}", form.suffix()), |dest| {
        definition(which).write(form, dest)
    })
}

/// A bad image (an OCI layout directory), built on first use in this process.
pub fn bad_image(which: BadImage) -> PathBuf {
    let key = format!("bad-{which:?}").to_lowercase();
    cached(&key, |dest| {
        let mut img = tiny_image();
        match which {
            BadImage::DigestMismatch => {
                let mut files = img.oci_files(false);
                let layer = img.layer_blob_names(false)[0].clone();
                let blob = files.get_mut(&layer).expect("layer blob");
                let middle = blob.len() / 2;
                blob[middle] ^= 0x40;
                write_tree(&files, dest);
                return;
            }
            BadImage::Traversal => img.layers[0].raw_file("../../escape", b"escaped\n"),
            BadImage::NoAmd64 => img.arch = "arm64".into(),
            BadImage::NoCommand => {
                img.config.as_object_mut().expect("object").remove("Cmd");
            }
            BadImage::MissingEntrypoint => {
                img.config["Entrypoint"] = json!(["/usr/bin/missing-server"])
            }
        }
        img.write(Form::OciDir, dest)
    })
}

/// The OCI layout directory of the redis image.
pub fn redis() -> PathBuf {
    image(TestImage::Redis, Form::OciDir)
}

/// The OCI layout directory of the nginx image.
pub fn nginx() -> PathBuf {
    image(TestImage::Nginx, Form::OciDir)
}

/// The OCI layout directory of the python image.
pub fn python() -> PathBuf {
    image(TestImage::Python, Form::OciDir)
}

/// The OCI layout directory of the two-layer whiteout image.
pub fn whiteouts() -> PathBuf {
    image(TestImage::Whiteouts, Form::OciDir)
}

static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());

/// Build `key` once per process into a scratch name, and publish it by
/// rename unless the previous build is the same image (builds are
/// deterministic, so that is the usual case).
fn cached(key: &str, build: impl FnOnce(&Path)) -> PathBuf {
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(key) {
        return p.clone();
    }
    let dir = images_dir();
    fs::create_dir_all(&dir).expect("create images dir");
    let dest = dir.join(key);
    let scratch = dir.join(format!(".{key}.tmp-{}", std::process::id()));
    remove_any(&scratch);
    build(&scratch);
    if same_image(&scratch, &dest) {
        // Leave the published copy alone: another test binary may be reading it.
        remove_any(&scratch);
    } else {
        remove_any(&dest);
        fs::rename(&scratch, &dest).expect("publish image");
    }
    built.insert(key.to_string(), dest.clone());
    dest
}

/// Two builds hold the same image: the same index.json (which names every
/// blob by digest) for a directory, the same bytes for a tar.
fn same_image(a: &Path, b: &Path) -> bool {
    let key = |p: &Path| {
        if p.is_dir() {
            fs::read(p.join("index.json")).ok()
        } else {
            fs::read(p).ok()
        }
    };
    matches!((key(a), key(b)), (Some(x), Some(y)) if x == y)
}

fn remove_any(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).expect("remove old image"),
        Ok(_) => fs::remove_file(path).expect("remove old image"),
        Err(_) => {}
    }
}

/// The definition of a test image (tests may alter it and write it themselves).
pub fn definition(which: TestImage) -> Image {
    match which {
        TestImage::Redis => redis_image(),
        TestImage::Nginx => nginx_image(),
        TestImage::Python => python_image(),
        TestImage::Whiteouts => whiteouts_image(),
    }
}

fn base_etc(layer: &mut Layer, passwd: &str, group: &str) {
    layer.file("etc/passwd", passwd.as_bytes(), 0o644);
    layer.file("etc/group", group.as_bytes(), 0o644);
    layer.file(
        "etc/nsswitch.conf",
        b"passwd: files\ngroup: files\nhosts: files dns\n",
        0o644,
    );
    layer.dir("tmp", 0o1777);
}

fn redis_image() -> Image {
    let mut l = Layer::default();
    l.program(Path::new("/usr/bin/redis-server"));
    base_etc(
        &mut l,
        &format!("root:x:0:0:root:/root:/bin/sh\nredis:x:{REDIS_UID}:{REDIS_UID}:redis:/data:/usr/sbin/nologin\n"),
        &format!("root:x:0:\nredis:x:{REDIS_UID}:\n"),
    );
    l.dir_owned("data", 0o755, REDIS_UID, REDIS_UID);
    Image::new(
        "redis",
        json!({
            "Cmd": ["redis-server", "--protected-mode", "no", "--bind", "0.0.0.0", "--port", "6379", "--dir", "/data", "--save", ""],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "User": "redis",
            "WorkingDir": "/data",
            "ExposedPorts": {"6379/tcp": {}},
        }),
        vec![l],
    )
}

/// nginx's own config: foreground, one worker, errors to stderr (the console).
const NGINX_CONF: &str = "user www-data;
worker_processes 1;
daemon off;
master_process on;
error_log stderr notice;
pid /run/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    types { text/html html; }
    default_type application/octet-stream;
    server {
        listen 80 default_server;
        root /usr/share/nginx/html;
        index index.html;
    }
}
";

fn nginx_image() -> Image {
    let mut l = Layer::default();
    l.program(Path::new("/usr/sbin/nginx"));
    base_etc(
        &mut l,
        &format!("root:x:0:0:root:/root:/bin/sh\nwww-data:x:{WWW_DATA_UID}:{WWW_DATA_UID}:www-data:/var/www:/usr/sbin/nologin\n"),
        &format!("root:x:0:\nwww-data:x:{WWW_DATA_UID}:\n"),
    );
    l.file("etc/nginx/nginx.conf", NGINX_CONF.as_bytes(), 0o644);
    l.file(
        "usr/share/nginx/html/index.html",
        NGINX_INDEX_BODY.as_bytes(),
        0o644,
    );
    // nginx opens its compiled-in error log and temp paths before reading the config.
    l.dir("var/log/nginx", 0o755);
    l.dir("var/lib/nginx", 0o755);
    l.dir("run", 0o755);
    Image::new(
        "nginx",
        json!({
            "Entrypoint": ["nginx"],
            "Cmd": ["-c", "/etc/nginx/nginx.conf"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "ExposedPorts": {"80/tcp": {}},
        }),
        vec![l],
    )
}

/// Parts of the standard library no test program imports (and the 24 MiB static libpython).
const PYTHON_SKIP: &[&str] = &[
    "__pycache__",
    "config-3.11-x86_64-linux-gnu",
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "pydoc_data",
];

fn python_image() -> Image {
    let mut l = Layer::default();
    l.program(Path::new("/usr/bin/python3"));
    l.host_tree(Path::new("/usr/lib/python3.11"), PYTHON_SKIP);
    // Extension modules bring their own libraries (libcrypto for _hashlib, ...).
    let dynload: Vec<PathBuf> = read_dir_sorted(Path::new("/usr/lib/python3.11/lib-dynload"));
    for lib in dynload.iter().flat_map(|so| shared_libs(so)) {
        l.host_path(&lib);
    }
    base_etc(
        &mut l,
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/app:/bin/sh\n",
        "root:x:0:\napp:x:1000:\n",
    );
    l.file("app/main.py", PYTHON_SCRIPT.as_bytes(), 0o644);
    Image::new(
        "python",
        json!({
            "Cmd": ["python3", "/app/main.py"],
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1", "LANG=C.UTF-8"],
            "User": "app",
            "WorkingDir": "/app",
        }),
        vec![l],
    )
}

/// Static busybox with sh, ls, cat and echo.
pub fn busybox_layer() -> Layer {
    let mut l = Layer::default();
    l.host_file("bin/busybox", Path::new("/bin/busybox"));
    for applet in ["sh", "ls", "cat", "echo"] {
        l.symlink(&format!("bin/{applet}"), "busybox");
    }
    l
}

fn whiteouts_image() -> Image {
    let mut lower = busybox_layer();
    lower.hardlink("bin/busybox-hardlink", "bin/busybox");
    lower.file("etc/removed", b"from layer 1\n", 0o644);
    lower.file("etc/kept", b"from layer 1\n", 0o644);
    lower.file("data/old-1", b"from layer 1\n", 0o644);
    lower.file("data/sub/old-2", b"from layer 1\n", 0o644);
    let mut upper = Layer::default();
    upper.whiteout("etc/removed");
    upper.opaque("data");
    upper.file("data/new", b"from layer 2\n", 0o644);
    Image::new(
        "whiteouts",
        json!({"Cmd": ["sh", "-c", "ls -A /data; cat /data/new"], "Env": ["PATH=/bin"]}),
        vec![lower, upper],
    )
}

/// The base of the bad images: busybox and `sh` as the command.
fn tiny_image() -> Image {
    Image::new(
        "tiny",
        json!({"Cmd": ["sh", "-c", "echo hi"], "Env": ["PATH=/bin"]}),
        vec![busybox_layer()],
    )
}

/// A member of a layer.
#[derive(Debug, Clone)]
pub enum Node {
    File { content: Content, mode: u32 },
    Dir { mode: u32, uid: u32, gid: u32 },
    Symlink(String),
    Hardlink(String),
}

/// Where a file's bytes come from.
#[derive(Debug, Clone)]
pub enum Content {
    Bytes(Vec<u8>),
    Host(PathBuf),
}

/// One layer's members by path (relative, no leading `/`).
#[derive(Debug, Clone, Default)]
pub struct Layer {
    pub entries: BTreeMap<String, Node>,
    /// Members written with their names verbatim (hostile names for bad images).
    pub raw: Vec<(String, Vec<u8>)>,
}

fn rel(path: &str) -> String {
    let p = path.trim_start_matches('/').trim_end_matches('/');
    assert!(!p.is_empty(), "empty path in a test layer");
    p.to_string()
}

impl Layer {
    pub fn file(&mut self, path: &str, bytes: &[u8], mode: u32) {
        self.entries.insert(
            rel(path),
            Node::File {
                content: Content::Bytes(bytes.to_vec()),
                mode,
            },
        );
    }

    pub fn host_file(&mut self, path: &str, host: &Path) {
        let mode = fs::metadata(host)
            .unwrap_or_else(|e| panic!("{}: {e}", host.display()))
            .permissions()
            .mode()
            & 0o7777;
        self.entries.insert(
            rel(path),
            Node::File {
                content: Content::Host(host.to_path_buf()),
                mode,
            },
        );
    }

    pub fn dir(&mut self, path: &str, mode: u32) {
        self.dir_owned(path, mode, 0, 0);
    }

    pub fn dir_owned(&mut self, path: &str, mode: u32, uid: u32, gid: u32) {
        self.entries.insert(rel(path), Node::Dir { mode, uid, gid });
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.entries
            .insert(rel(path), Node::Symlink(target.to_string()));
    }

    pub fn hardlink(&mut self, path: &str, target: &str) {
        self.entries.insert(rel(path), Node::Hardlink(rel(target)));
    }

    /// Delete `path` of the layers below.
    pub fn whiteout(&mut self, path: &str) {
        let p = rel(path);
        let (dir, name) = p.rsplit_once('/').map_or(("", p.as_str()), |(d, n)| (d, n));
        let marker = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&marker, b"", 0o644);
    }

    /// Hide everything the layers below put in `dir`.
    pub fn opaque(&mut self, dir: &str) {
        self.file(&format!("{}/.wh..wh..opq", rel(dir)), b"", 0o644);
    }

    /// A member whose name is written as is (`../x`): only for bad images.
    pub fn raw_file(&mut self, name: &str, bytes: &[u8]) {
        self.raw.push((name.to_string(), bytes.to_vec()));
    }

    /// Debian's merged /usr: /bin, /sbin, /lib, /lib64 are links into /usr.
    fn merged_usr(&mut self) {
        for top in ["bin", "sbin", "lib", "lib64"] {
            self.entries
                .entry(top.into())
                .or_insert_with(|| Node::Symlink(format!("usr/{top}")));
        }
    }

    /// A host program with every shared library it loads, at the paths the
    /// dynamic linker will look for them.
    pub fn program(&mut self, host: &Path) {
        self.host_path(host);
        for lib in shared_libs(host) {
            self.host_path(&lib);
        }
    }

    /// A host file at its real path, plus a symlink from the path it was
    /// named by when that differs (`/usr/bin/python3` -> `python3.11`).
    pub fn host_path(&mut self, host: &Path) {
        self.merged_usr();
        let real = fs::canonicalize(host).unwrap_or_else(|e| panic!("{}: {e}", host.display()));
        let real_s = real.to_string_lossy().into_owned();
        self.host_file(&real_s, &real);
        let named = in_usr(&host.to_string_lossy());
        if rel(&named) != rel(&real_s) {
            self.entries
                .entry(rel(&named))
                .or_insert_with(|| Node::Symlink(real_s.clone()));
        }
    }

    /// A host directory tree at the same path, symlinks kept, `skip` names left out.
    pub fn host_tree(&mut self, host: &Path, skip: &[&str]) {
        let meta = fs::symlink_metadata(host).unwrap_or_else(|e| panic!("{}: {e}", host.display()));
        let path = host.to_string_lossy().into_owned();
        if meta.file_type().is_symlink() {
            let target = fs::read_link(host).expect("read link");
            self.symlink(&path, &target.to_string_lossy());
        } else if meta.is_dir() {
            self.dir(&path, meta.permissions().mode() & 0o7777);
            for child in read_dir_sorted(host) {
                let name = child
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned();
                if !skip.contains(&name.as_str()) {
                    self.host_tree(&child, skip);
                }
            }
        } else if meta.is_file() {
            self.host_file(&path, host);
        }
    }

    /// The layer as an uncompressed tar: sorted, parents first, mtime 0.
    pub fn tar(&self) -> Vec<u8> {
        let mut entries = self.entries.clone();
        for path in self.entries.keys() {
            let mut parent = Path::new(path).parent();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                let key = p.to_string_lossy().into_owned();
                match entries.get(&key) {
                    None => {
                        entries.insert(
                            key,
                            Node::Dir {
                                mode: 0o755,
                                uid: 0,
                                gid: 0,
                            },
                        );
                    }
                    Some(Node::Dir { .. }) => {}
                    Some(other) => {
                        panic!("test layer: `{key}` is {other:?} but `{path}` is inside it")
                    }
                }
                parent = p.parent();
            }
        }
        let mut b = tar::Builder::new(Vec::new());
        for (path, node) in &entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            h.set_size(0);
            match node {
                Node::File { content, mode } => {
                    let bytes = match content {
                        Content::Bytes(b) => b.clone(),
                        Content::Host(p) => {
                            fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                        }
                    };
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*mode);
                    h.set_size(bytes.len() as u64);
                    b.append_data(&mut h, path, &bytes[..]).expect("tar file");
                }
                Node::Dir { mode, uid, gid } => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(*mode);
                    h.set_uid(u64::from(*uid));
                    h.set_gid(u64::from(*gid));
                    b.append_data(&mut h, format!("{path}/"), &[][..])
                        .expect("tar dir");
                }
                Node::Symlink(target) | Node::Hardlink(target) => {
                    let kind = if matches!(node, Node::Symlink(_)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    };
                    h.set_entry_type(kind);
                    h.set_mode(0o777);
                    b.append_link(&mut h, path, target).expect("tar link");
                }
            }
        }
        for (name, bytes) in &self.raw {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(bytes.len() as u64);
            h.as_gnu_mut().expect("gnu header").name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, &bytes[..]).expect("tar raw member");
        }
        b.into_inner().expect("finish tar")
    }
}

/// A host path as seen through merged /usr (`/lib/x` -> `/usr/lib/x`).
fn in_usr(path: &str) -> String {
    for top in ["/bin/", "/sbin/", "/lib/", "/lib64/"] {
        if let Some(rest) = path.strip_prefix(top) {
            return format!("/usr{top}{rest}");
        }
    }
    path.to_string()
}

fn read_dir_sorted(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    v.sort();
    v
}

/// The libraries `ldd` says `elf` loads, the ELF interpreter included
/// (nothing for a static binary).
pub fn shared_libs(elf: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(elf).output().expect("run ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or `/lib64/ld-linux-x86-64.so.2 (0x...)`.
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    libs
}

/// An image: the config's `config` object, its layers, and its platform.
#[derive(Debug, Clone)]
pub struct Image {
    /// Repository name (`redis`), written as `<name>:latest` where the form has a place for it.
    pub name: String,
    /// The image config's `config` (Entrypoint, Cmd, Env, User, ...).
    pub config: Value,
    pub layers: Vec<Layer>,
    /// GOARCH (`amd64`).
    pub arch: String,
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    // GzEncoder writes mtime 0 and no file name: the same bytes every time.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

impl Image {
    pub fn new(name: &str, config: Value, layers: Vec<Layer>) -> Image {
        Image {
            name: name.into(),
            config,
            layers,
            arch: "amd64".into(),
        }
    }

    fn config_blob(&self, tars: &[Vec<u8>]) -> Vec<u8> {
        let diff_ids: Vec<String> = tars.iter().map(|t| format!("sha256:{}", sha(t))).collect();
        json!({
            "architecture": self.arch,
            "os": "linux",
            "config": self.config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        })
        .to_string()
        .into_bytes()
    }

    /// Blob paths of the layers in [`Image::oci_files`].
    pub fn layer_blob_names(&self, uncompressed: bool) -> Vec<String> {
        self.layers
            .iter()
            .map(|l| {
                let t = l.tar();
                format!(
                    "blobs/sha256/{}",
                    sha(&if uncompressed { t } else { gzip(&t) })
                )
            })
            .collect()
    }

    /// The files of an OCI layout (gzip layers, or uncompressed as docker 25 writes them).
    pub fn oci_files(&self, uncompressed: bool) -> BTreeMap<String, Vec<u8>> {
        let tars: Vec<Vec<u8>> = self.layers.iter().map(Layer::tar).collect();
        let config = self.config_blob(&tars);
        let mut files = BTreeMap::new();
        let mut blob = |bytes: Vec<u8>| {
            let hex = sha(&bytes);
            let size = bytes.len();
            files.insert(format!("blobs/sha256/{hex}"), bytes);
            (format!("sha256:{hex}"), size)
        };
        let (config_digest, config_size) = blob(config);
        let layer_type = if uncompressed {
            "application/vnd.oci.image.layer.v1.tar"
        } else {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        };
        let layers: Vec<Value> = tars
            .iter()
            .map(|t| {
                let (d, s) = blob(if uncompressed { t.clone() } else { gzip(t) });
                json!({"mediaType": layer_type, "digest": d, "size": s})
            })
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": layers,
        });
        let (manifest_digest, manifest_size) = blob(manifest.to_string().into_bytes());
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "platform": {"architecture": self.arch, "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": format!("docker.io/library/{}:latest", self.name),
                    "org.opencontainers.image.ref.name": "latest",
                },
            }],
        });
        files.insert("index.json".into(), index.to_string().into_bytes());
        files.insert("oci-layout".into(), OCI_LAYOUT.as_bytes().to_vec());
        files
    }

    /// The files of a docker save from before docker 25.
    fn docker_legacy_files(&self) -> BTreeMap<String, Vec<u8>> {
        let tars: Vec<Vec<u8>> = self.layers.iter().map(Layer::tar).collect();
        let config = self.config_blob(&tars);
        let config_name = format!("{}.json", sha(&config));
        let mut files = BTreeMap::new();
        let mut layer_names = Vec::new();
        for t in &tars {
            let name = format!("{}/layer.tar", sha(t));
            files.insert(name.clone(), t.clone());
            layer_names.push(name);
        }
        let tag = format!("{}:latest", self.name);
        files.insert(
            "manifest.json".into(),
            json!([{"Config": config_name, "RepoTags": [tag], "Layers": layer_names}])
                .to_string()
                .into_bytes(),
        );
        let top = tars.last().map(|t| sha(t)).unwrap_or_default();
        files.insert(
            "repositories".into(),
            json!({ self.name.clone(): {"latest": top} })
                .to_string()
                .into_bytes(),
        );
        files.insert(config_name, config);
        files
    }

    /// The files of a docker save since docker 25: an OCI layout plus manifest.json.
    fn docker_oci_files(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = self.oci_files(true);
        let index: Value = serde_json::from_slice(&files["index.json"]).expect("index");
        let manifest_blob = format!(
            "blobs/sha256/{}",
            &index["manifests"][0]["digest"].as_str().expect("digest")[7..]
        );
        let manifest: Value = serde_json::from_slice(&files[&manifest_blob]).expect("manifest");
        let config = format!(
            "blobs/sha256/{}",
            &manifest["config"]["digest"].as_str().expect("digest")[7..]
        );
        let layers: Vec<String> = manifest["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| {
                format!(
                    "blobs/sha256/{}",
                    &l["digest"].as_str().expect("digest")[7..]
                )
            })
            .collect();
        let tag = format!("{}:latest", self.name);
        files.insert(
            "manifest.json".into(),
            json!([{"Config": config, "RepoTags": [tag], "Layers": layers}])
                .to_string()
                .into_bytes(),
        );
        files
    }

    /// Write the image in `form` at `dest` (a directory for [`Form::OciDir`], else a tar file).
    pub fn write(&self, form: Form, dest: &Path) {
        match form {
            Form::OciDir => write_tree(&self.oci_files(false), dest),
            Form::OciTar => write_tar(&self.oci_files(false), dest),
            Form::DockerLegacy => write_tar(&self.docker_legacy_files(), dest),
            Form::DockerOci => write_tar(&self.docker_oci_files(), dest),
        }
    }
}

fn write_tree(files: &BTreeMap<String, Vec<u8>>, dest: &Path) {
    for (name, bytes) in files {
        let path = dest.join(name);
        fs::create_dir_all(path.parent().expect("parent")).expect("create image dir");
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

fn write_tar(files: &BTreeMap<String, Vec<u8>>, dest: &Path) {
    let file = fs::File::create(dest).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
    let mut b = tar::Builder::new(std::io::BufWriter::new(file));
    for (name, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        b.append_data(&mut h, name, &bytes[..])
            .expect("tar image file");
    }
    b.into_inner()
        .expect("finish tar")
        .flush()
        .expect("flush image tar");
}
