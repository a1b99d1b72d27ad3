//! Image configuration + the user's overrides -> [`ContainerSpec`].
//!
//! Docker's rules, read from the image itself: argv is Entrypoint + Cmd
//! (the user's arguments replace Cmd; a new entrypoint drops Cmd); Env
//! gets PATH and HOME when the image does not set them; User is a name or
//! uid, optionally `:group` or `:gid`, names resolved through the rootfs's
//! /etc/passwd and /etc/group, and supplementary groups are the groups that
//! list the user as a member. argv[0] must be an executable file in the
//! rootfs, found through PATH when it has no `/` (links followed inside
//! the rootfs), so a typo fails here and not inside a booted VM.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::image::{Config, ImageConfiguration};
use thiserror::Error;

use super::rootfs_path::{self, RootPathError};
use crate::container::spec::ContainerSpec;

/// Docker's PATH for images that set none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Longest hostname Linux accepts.
const MAX_HOSTNAME: usize = 63;

/// What the user asked for on top of the image's config (`docker run`'s flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Replaces Entrypoint, and drops the image's Cmd (`--entrypoint`).
    pub entrypoint: Option<Vec<String>>,
    /// Replaces Cmd (the arguments after the image name).
    pub cmd: Option<Vec<String>>,
    /// `KEY=VALUE`, replacing the image's KEY (`-e`).
    pub env: Vec<String>,
    /// `name`, `uid`, `name:group`, `uid:gid` (`--user`).
    pub user: Option<String>,
    /// Working directory (`--workdir`).
    pub workdir: Option<String>,
    /// Hostname (`--hostname`); default: derived from the image's name.
    pub hostname: Option<String>,
}

/// Why the config cannot become a spec. Each names the field at fault.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("image config has no Entrypoint and no Cmd: nothing to run (give a command after the image)")]
    NoCommand,
    #[error("entrypoint `{argv0}` is not an executable file in the image (looked at: {})", searched.join(", "))]
    EntrypointNotFound {
        argv0: String,
        searched: Vec<String>,
    },
    #[error("User `{user}`: {reason}")]
    BadUser { user: String, reason: String },
    #[error("Env entry `{entry}` is not KEY=VALUE")]
    BadEnv { entry: String },
    #[error("WorkingDir `{dir}`: {reason}")]
    BadWorkdir { dir: String, reason: String },
    #[error("hostname `{hostname}`: {reason}")]
    BadHostname { hostname: String, reason: String },
    #[error("`{path}` inside the image: {source}")]
    RootPath {
        path: String,
        #[source]
        source: RootPathError,
    },
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Build the spec for `rootfs` (already unpacked). `image_name` is the name
/// the hostname is derived from when the user gives none.
pub fn build_spec(
    image: &ImageConfiguration,
    rootfs: &Path,
    overrides: &Overrides,
    image_name: &str,
) -> Result<ContainerSpec, ConfigError> {
    let empty = Config::default();
    let config = image.config().as_ref().unwrap_or(&empty);

    let (args, entrypoint_len) = argv(config, overrides)?;
    let user_field = overrides
        .user
        .clone()
        .or_else(|| config.user().clone())
        .unwrap_or_default();
    let user = resolve_user(rootfs, &user_field)?;
    let env = environment(config, overrides, user.home.as_deref())?;
    let cwd = working_dir(
        rootfs,
        overrides
            .workdir
            .as_deref()
            .or(config.working_dir().as_deref()),
    )?;
    find_executable(rootfs, &args[0], &cwd, &env)?;
    let hostname = match &overrides.hostname {
        Some(h) => check_hostname(h)?,
        None => hostname_from(image_name),
    };
    let mut exposed_ports = config.exposed_ports().clone().unwrap_or_default();
    exposed_ports.sort();
    Ok(ContainerSpec {
        args,
        entrypoint_len,
        env,
        cwd,
        uid: user.uid,
        gid: user.gid,
        groups: user.groups,
        hostname,
        exposed_ports,
        network: None,
    })
}

/// Entrypoint + Cmd, and how many of them are the Entrypoint.
fn argv(config: &Config, overrides: &Overrides) -> Result<(Vec<String>, usize), ConfigError> {
    let (entrypoint, cmd) = match &overrides.entrypoint {
        Some(e) => (e.clone(), overrides.cmd.clone().unwrap_or_default()),
        None => (
            config.entrypoint().clone().unwrap_or_default(),
            overrides
                .cmd
                .clone()
                .or_else(|| config.cmd().clone())
                .unwrap_or_default(),
        ),
    };
    let entrypoint_len = entrypoint.len();
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    match args.first() {
        Some(a0) if !a0.is_empty() => Ok((args, entrypoint_len)),
        _ => Err(ConfigError::NoCommand),
    }
}

fn environment(
    config: &Config,
    overrides: &Overrides,
    home: Option<&str>,
) -> Result<Vec<String>, ConfigError> {
    let mut env: Vec<String> = Vec::new();
    for entry in config.env().iter().flatten().chain(&overrides.env) {
        let Some((key, _)) = entry.split_once('=') else {
            return Err(ConfigError::BadEnv {
                entry: entry.clone(),
            });
        };
        env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key));
        env.push(entry.clone());
    }
    let has = |env: &[String], key: &str| env.iter().any(|e| e.starts_with(&format!("{key}=")));
    if !has(&env, "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if let (false, Some(home)) = (has(&env, "HOME"), home) {
        env.push(format!("HOME={home}"));
    }
    Ok(env)
}

/// The working directory, absolute; created (as `docker run` does) when missing.
fn working_dir(rootfs: &Path, dir: Option<&str>) -> Result<String, ConfigError> {
    let dir = match dir {
        None | Some("") => return Ok("/".into()),
        Some(d) => d,
    };
    let bad = |reason: &str| ConfigError::BadWorkdir {
        dir: dir.to_string(),
        reason: reason.to_string(),
    };
    let cwd = if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("/{dir}")
    };
    let real = rootfs_path::resolve(rootfs, Path::new(&cwd), true).map_err(|source| {
        ConfigError::RootPath {
            path: cwd.clone(),
            source,
        }
    })?;
    let path = rootfs.join(real);
    match fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(bad("exists in the image and is not a directory")),
        Err(_) => fs::create_dir_all(&path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?,
    }
    Ok(cwd)
}

/// Find argv[0] the way execvp will inside the container.
fn find_executable(
    rootfs: &Path,
    argv0: &str,
    cwd: &str,
    env: &[String],
) -> Result<(), ConfigError> {
    let candidates: Vec<String> = if argv0.contains('/') {
        vec![if argv0.starts_with('/') {
            argv0.to_string()
        } else {
            format!("{}/{argv0}", cwd.trim_end_matches('/'))
        }]
    } else {
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{}/{argv0}", d.trim_end_matches('/')))
            .collect()
    };
    for candidate in &candidates {
        // A link that leads out of the rootfs or loops is simply not a hit.
        let Ok(real) = rootfs_path::resolve(rootfs, Path::new(candidate), true) else {
            continue;
        };
        if fs::metadata(rootfs.join(real))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        {
            return Ok(());
        }
    }
    Err(ConfigError::EntrypointNotFound {
        argv0: argv0.to_string(),
        searched: candidates,
    })
}

/// The resolved identity of the container's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (sorted, without the primary gid).
    pub groups: Vec<u32>,
    /// Home directory from /etc/passwd, when the user is listed there.
    pub home: Option<String>,
}

/// Resolve a `User` value through the rootfs's /etc/passwd and /etc/group.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<ResolvedUser, ConfigError> {
    let bad = |reason: String| ConfigError::BadUser {
        user: user.to_string(),
        reason,
    };
    let (name_or_uid, group) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_db(rootfs, "/etc/passwd")?;
    let groups_db = read_db(rootfs, "/etc/group")?;
    let users = passwd.as_deref().map(parse_passwd).unwrap_or_default();
    let groups = groups_db.as_deref().map(parse_group).unwrap_or_default();

    let entry = match name_or_uid {
        "" => users
            .iter()
            .find(|u| u.uid == 0)
            .cloned()
            .or(Some(PasswdEntry {
                name: "root".into(),
                uid: 0,
                gid: 0,
                home: "/root".into(),
            })),
        u if u.bytes().all(|b| b.is_ascii_digit()) => {
            // (uid_t)-1 means "unchanged" to setuid(2): not a user.
            let uid: u32 = u.parse().ok().filter(|n| *n != u32::MAX).ok_or_else(|| bad(format!("uid out of range (0 to {})", u32::MAX - 1)))?;
            users
                .iter()
                .find(|e| e.uid == uid)
                .cloned()
                .or(Some(PasswdEntry {
                    name: String::new(),
                    uid,
                    gid: 0,
                    home: String::new(),
                }))
        }
        name => match users.iter().find(|e| e.name == name) {
            Some(e) => Some(e.clone()),
            None if passwd.is_none() => {
                return Err(bad(
                    "the image has no /etc/passwd to look the name up in".into()
                ))
            }
            None => return Err(bad(format!("no user `{name}` in the image's /etc/passwd"))),
        },
    };
    let entry = entry.expect("every branch yields an entry");
    let gid = match group {
        None | Some("") => entry.gid,
        Some(g) if g.bytes().all(|b| b.is_ascii_digit()) => {
            g.parse().ok().filter(|n| *n != u32::MAX).ok_or_else(|| bad(format!("gid out of range (0 to {})", u32::MAX - 1)))?
        }
        Some(g) => match groups.iter().find(|e| e.name == g) {
            Some(e) => e.gid,
            None => return Err(bad(format!("no group `{g}` in the image's /etc/group"))),
        },
    };
    let mut supplementary: Vec<u32> = if entry.name.is_empty() {
        Vec::new()
    } else {
        groups
            .iter()
            .filter(|g| g.members.contains(&entry.name))
            .map(|g| g.gid)
            .filter(|g| *g != gid)
            .collect()
    };
    supplementary.sort_unstable();
    supplementary.dedup();
    Ok(ResolvedUser {
        uid: entry.uid,
        gid,
        groups: supplementary,
        home: (!entry.home.is_empty()).then_some(entry.home),
    })
}

/// Read a small text database from inside the rootfs (None if absent).
fn read_db(rootfs: &Path, path: &str) -> Result<Option<String>, ConfigError> {
    let real = rootfs_path::resolve(rootfs, Path::new(path), true).map_err(|source| {
        ConfigError::RootPath {
            path: path.to_string(),
            source,
        }
    })?;
    let host = rootfs.join(real);
    match fs::read(&host) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Io { path: host, source }),
    }
}

#[derive(Debug, Clone)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

#[derive(Debug, Clone)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// `name:pw:uid:gid:gecos:home:shell`; malformed lines are skipped (as libc does).
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 || f[0].is_empty() || f[0].starts_with('#') {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].into(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].into(),
            })
        })
        .collect()
}

/// `name:pw:gid:member,member`.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 || f[0].is_empty() || f[0].starts_with('#') {
                return None;
            }
            let members = f[3]
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(String::from)
                .collect();
            Some(GroupEntry {
                name: f[0].into(),
                gid: f[2].parse().ok()?,
                members,
            })
        })
        .collect()
}

/// A short hostname from an image name: `docker.io/library/redis:7` ->
/// `redis`, `./images/my_app.tar` -> `my-app`.
pub fn hostname_from(image_name: &str) -> String {
    let last = image_name.rsplit('/').next().unwrap_or("");
    let base = last.split(['@', ':']).next().unwrap_or("");
    let base = base.strip_suffix(".tar").unwrap_or(base);
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(MAX_HOSTNAME);
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        "container".into()
    } else {
        name
    }
}

fn check_hostname(h: &str) -> Result<String, ConfigError> {
    let bad = |reason: &str| ConfigError::BadHostname {
        hostname: h.to_string(),
        reason: reason.to_string(),
    };
    if h.is_empty() || h.len() > MAX_HOSTNAME {
        return Err(bad("must be 1 to 63 characters"));
    }
    if !h
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        || h.starts_with('-')
    {
        return Err(bad(
            "only letters, digits, `-` and `.`, not starting with `-`",
        ));
    }
    Ok(h.to_string())
}
