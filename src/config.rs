//! The configuration every command and the agent share: `db`,
//! `cluster_db`, `db_dir`, `host_name`, `underlay_ip`, `tunnel`, `bridge`, `docker_plugin` and the TLS
//! files, from a TOML file (`/etc/ovsnet/ovsnet.conf`), the environment
//! (`OVSNET_*`, one variable per key) and the command line.
//!
//! [`resolve`] is pure: it takes the flags given, the environment, the
//! file's text and the defaults, and returns each value with where it came
//! from (flag, then environment, then file, then default). Only
//! [`read_file`] does I/O. Bad input (an unknown key, a wrong type, a bad
//! address) is one line that names the file, the line and the key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

/// Where the configuration file is when neither `--config` nor
/// `OVSNET_CONFIG` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/ovsnet/ovsnet.conf";

/// The variable that names another configuration file.
pub const CONFIG_ENV: &str = "OVSNET_CONFIG";

/// A configuration key: one name in the file, one environment variable, one flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Db,
    ClusterDb,
    DbDir,
    HostName,
    UnderlayIp,
    Tunnel,
    Bridge,
    DockerPlugin,
    PrivateKey,
    Certificate,
    CaCert,
}

impl Key {
    /// Every key, in the order `config show` prints them.
    pub const ALL: [Key; 11] = [
        Key::Db,
        Key::ClusterDb,
        Key::DbDir,
        Key::HostName,
        Key::UnderlayIp,
        Key::Tunnel,
        Key::Bridge,
        Key::DockerPlugin,
        Key::PrivateKey,
        Key::Certificate,
        Key::CaCert,
    ];

    /// The key's name in the file.
    pub fn name(self) -> &'static str {
        match self {
            Key::Db => "db",
            Key::ClusterDb => "cluster_db",
            Key::DbDir => "db_dir",
            Key::HostName => "host_name",
            Key::UnderlayIp => "underlay_ip",
            Key::Tunnel => "tunnel",
            Key::Bridge => "bridge",
            Key::DockerPlugin => "docker_plugin",
            Key::PrivateKey => "private_key",
            Key::Certificate => "certificate",
            Key::CaCert => "ca_cert",
        }
    }

    /// The environment variable that sets it.
    pub fn env(self) -> &'static str {
        match self {
            Key::Db => "OVSNET_DB",
            Key::ClusterDb => "OVSNET_CLUSTER_DB",
            Key::DbDir => "OVSNET_DB_DIR",
            Key::HostName => "OVSNET_HOST_NAME",
            Key::UnderlayIp => "OVSNET_UNDERLAY_IP",
            Key::Tunnel => "OVSNET_TUNNEL",
            Key::Bridge => "OVSNET_BRIDGE",
            Key::DockerPlugin => "OVSNET_DOCKER_PLUGIN",
            Key::PrivateKey => "OVSNET_PRIVATE_KEY",
            Key::Certificate => "OVSNET_CERTIFICATE",
            Key::CaCert => "OVSNET_CA_CERT",
        }
    }

    /// The command-line flag that sets it.
    pub fn flag(self) -> &'static str {
        match self {
            Key::Db => "--db",
            Key::ClusterDb => "--cluster-db",
            Key::DbDir => "--db-dir",
            Key::HostName => "--host-name",
            Key::UnderlayIp => "--underlay-ip",
            Key::Tunnel => "--tunnel",
            Key::Bridge => "--bridge",
            Key::DockerPlugin => "--docker-plugin",
            Key::PrivateKey => "--private-key",
            Key::Certificate => "--certificate",
            Key::CaCert => "--ca-cert",
        }
    }

    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A tunnel type, as the `tunnel` key and `--tunnel` spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tunnel {
    Gre,
    Vxlan,
    Geneve,
}

impl Tunnel {
    pub fn as_str(self) -> &'static str {
        match self {
            Tunnel::Gre => "gre",
            Tunnel::Vxlan => "vxlan",
            Tunnel::Geneve => "geneve",
        }
    }

    pub fn parse(s: &str) -> Option<Tunnel> {
        match s {
            "gre" => Some(Tunnel::Gre),
            "vxlan" => Some(Tunnel::Vxlan),
            "geneve" => Some(Tunnel::Geneve),
            _ => None,
        }
    }

    /// A comma-separated list (`vxlan,gre`), as `OVSNET_TUNNEL` holds it.
    pub fn parse_list(s: &str) -> Result<Vec<Tunnel>, String> {
        s.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| Tunnel::parse(t).ok_or_else(|| format!("unknown tunnel type {t:?} (use gre, vxlan or geneve)")))
            .collect()
    }
}

impl fmt::Display for Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `tunnel = "vxlan"` or `tunnel = ["vxlan", "gre"]` (in order of preference).
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Tunnel>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a tunnel type (gre, vxlan or geneve) or a list of them")]
    enum OneOrMany {
        One(Tunnel),
        Many(Vec<Tunnel>),
    }
    Ok(Some(match OneOrMany::deserialize(d)? {
        OneOrMany::One(t) => vec![t],
        OneOrMany::Many(v) => v,
    }))
}

/// The values of the keys, each perhaps absent: what the file holds, what
/// the flags say, what the defaults are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub db: Option<String>,
    pub cluster_db: Option<String>,
    /// This host's ovsnet database: a standalone server, or this host's
    /// member of the cluster database, with its files.
    pub db_dir: Option<PathBuf>,
    pub host_name: Option<String>,
    pub underlay_ip: Option<IpAddr>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub tunnel: Option<Vec<Tunnel>>,
    pub bridge: Option<String>,
    /// The agent's Docker plugin socket (off when unset).
    pub docker_plugin: Option<PathBuf>,
    pub private_key: Option<PathBuf>,
    pub certificate: Option<PathBuf>,
    pub ca_cert: Option<PathBuf>,
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(&'static str),
    File {
        path: PathBuf,
        line: usize,
    },
    Default,
    /// Nowhere: the key has no value.
    Unset,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("flag"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::File { path, line } => write!(f, "file {}:{line}", path.display()),
            Source::Default => f.write_str("default"),
            Source::Unset => f.write_str("unset"),
        }
    }
}

/// A resolved value and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: Option<T>,
    pub source: Source,
}

impl<T> Setting<T> {
    pub fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }
}

/// Every key resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub db: Setting<String>,
    pub cluster_db: Setting<String>,
    pub db_dir: Setting<PathBuf>,
    pub host_name: Setting<String>,
    pub underlay_ip: Setting<IpAddr>,
    pub tunnel: Setting<Vec<Tunnel>>,
    pub bridge: Setting<String>,
    pub docker_plugin: Setting<PathBuf>,
    pub private_key: Setting<PathBuf>,
    pub certificate: Setting<PathBuf>,
    pub ca_cert: Setting<PathBuf>,
}

/// One key of [`Resolved`] as `config show` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shown {
    pub key: &'static str,
    pub value: Option<String>,
    pub source: String,
}

impl Resolved {
    /// A key's value as text (`None`: unset) and its source.
    pub fn shown(&self, key: Key) -> (Option<String>, &Source) {
        fn text<T: fmt::Display>(s: &Setting<T>) -> (Option<String>, &Source) {
            (s.value.as_ref().map(T::to_string), &s.source)
        }
        fn path(s: &Setting<PathBuf>) -> (Option<String>, &Source) {
            (s.value.as_ref().map(|p| p.display().to_string()), &s.source)
        }
        match key {
            Key::Db => text(&self.db),
            Key::ClusterDb => text(&self.cluster_db),
            Key::DbDir => path(&self.db_dir),
            Key::HostName => text(&self.host_name),
            Key::UnderlayIp => text(&self.underlay_ip),
            Key::Tunnel => (
                self.tunnel.value.as_ref().map(|v| v.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",")),
                &self.tunnel.source,
            ),
            Key::Bridge => text(&self.bridge),
            Key::DockerPlugin => path(&self.docker_plugin),
            Key::PrivateKey => path(&self.private_key),
            Key::Certificate => path(&self.certificate),
            Key::CaCert => path(&self.ca_cert),
        }
    }

    /// Every key, in [`Key::ALL`] order.
    pub fn rows(&self) -> Vec<Shown> {
        Key::ALL
            .into_iter()
            .map(|k| {
                let (value, source) = self.shown(k);
                Shown { key: k.name(), value, source: source.to_string() }
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The file is not valid: one line naming it, the line and the key.
    #[error("{}:{line}: {}{message}", path.display(), key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default())]
    File { path: PathBuf, line: usize, key: Option<String>, message: String },
    /// An environment variable holds what its key cannot take.
    #[error("{var}={value:?}: {message}")]
    Env { var: &'static str, value: String, message: String },
    /// The file could not be read (a missing default file is not an error).
    #[error("configuration file {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
}

/// The configuration file to read and whether it was named (by
/// `--config` or `OVSNET_CONFIG`): a named file must exist, the default
/// one need not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPath {
    pub path: PathBuf,
    pub source: Source,
}

impl ConfigPath {
    pub fn explicit(&self) -> bool {
        self.source != Source::Default
    }
}

/// `--config FILE`, else `OVSNET_CONFIG`, else [`DEFAULT_PATH`].
pub fn config_path(flag: Option<&Path>, env: &BTreeMap<String, String>) -> ConfigPath {
    match (flag, env.get(CONFIG_ENV).filter(|v| !v.is_empty())) {
        (Some(p), _) => ConfigPath { path: p.to_owned(), source: Source::Flag },
        (None, Some(p)) => ConfigPath { path: PathBuf::from(p), source: Source::Env(CONFIG_ENV) },
        (None, None) => ConfigPath { path: PathBuf::from(DEFAULT_PATH), source: Source::Default },
    }
}

/// Reads the configuration file: `None` when it is the default one and
/// does not exist (*I/O*).
pub fn read_file(p: &ConfigPath) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(&p.path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !p.explicit() => Ok(None),
        Err(e) => Err(ConfigError::Read { path: p.path.clone(), message: e.to_string() }),
    }
}

/// A configuration file's text and where it was read from.
#[derive(Debug, Clone, Copy)]
pub struct FileText<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    // An offset inside a multi-byte character counts on its line, too.
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// A parsed file: its values and the line each key is on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedFile {
    pub config: Config,
    pub lines: BTreeMap<Key, usize>,
}

/// Parses a configuration file (pure). An error names the file, the line
/// and the key.
pub fn parse_file(file: FileText<'_>) -> Result<ParsedFile, ConfigError> {
    let bad = |line: usize, key: Option<String>, message: String| ConfigError::File {
        path: file.path.to_owned(),
        line,
        key,
        message: message.replace('\n', " ").trim().to_owned(),
    };
    // The syntax first: its errors have no key.
    let table = toml::de::DeTable::parse(file.text)
        .map_err(|e| bad(e.span().map_or(1, |s| line_of(file.text, s.start)), None, e.message().to_owned()))?;
    let mut lines = BTreeMap::new();
    for (k, v) in table.get_ref().iter() {
        let line = line_of(file.text, k.span().start);
        match Key::from_name(k.get_ref()) {
            Some(key) => {
                lines.insert(key, line);
            }
            None => {
                let known: Vec<&str> = Key::ALL.iter().map(|k| k.name()).collect();
                let what = if v.get_ref().is_table() { "unknown section" } else { "unknown key" };
                return Err(bad(
                    line,
                    Some(k.get_ref().to_string()),
                    format!("{what} (the keys: {})", known.join(", ")),
                ));
            }
        }
    }
    let config: Config = toml::from_str(file.text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        // The key whose name or value holds the error.
        let key = table
            .get_ref()
            .iter()
            .find(|(k, v)| k.span().contains(&at) || v.span().contains(&at) || v.span().end == at)
            .map(|(k, _)| k.get_ref().to_string());
        let line = match key.as_deref().and_then(Key::from_name) {
            Some(k) => lines.get(&k).copied().unwrap_or_else(|| line_of(file.text, at)),
            None => line_of(file.text, at),
        };
        bad(line, key, e.message().to_owned())
    })?;
    Ok(ParsedFile { config, lines })
}

/// The environment's values (`OVSNET_*`; an empty variable counts as unset).
pub fn parse_env(env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
    let get = |k: Key| env.get(k.env()).filter(|v| !v.trim().is_empty()).map(|v| v.trim().to_owned());
    let underlay_ip = match get(Key::UnderlayIp) {
        None => None,
        Some(v) => Some(v.parse::<IpAddr>().map_err(|e| ConfigError::Env {
            var: Key::UnderlayIp.env(),
            value: v.clone(),
            message: e.to_string(),
        })?),
    };
    let tunnel = match get(Key::Tunnel) {
        None => None,
        Some(v) => Some(Tunnel::parse_list(&v).map_err(|message| ConfigError::Env {
            var: Key::Tunnel.env(),
            value: v,
            message,
        })?),
    };
    Ok(Config {
        db: get(Key::Db),
        cluster_db: get(Key::ClusterDb),
        db_dir: get(Key::DbDir).map(PathBuf::from),
        host_name: get(Key::HostName),
        underlay_ip,
        tunnel,
        bridge: get(Key::Bridge),
        docker_plugin: get(Key::DockerPlugin).map(PathBuf::from),
        private_key: get(Key::PrivateKey).map(PathBuf::from),
        certificate: get(Key::Certificate).map(PathBuf::from),
        ca_cert: get(Key::CaCert).map(PathBuf::from),
    })
}

/// Resolves every key: the flag given, else the environment, else the
/// file, else the default (pure). `file` is the configuration file's
/// text, `None` when there is none.
pub fn resolve(
    flags: &Config,
    env: &BTreeMap<String, String>,
    file: Option<FileText<'_>>,
    defaults: &Config,
) -> Result<Resolved, ConfigError> {
    // The file is checked even when flags and environment set every key:
    // a bad file is an error whatever else is given.
    let parsed = file.map(parse_file).transpose()?.unwrap_or_default();
    let env_values = parse_env(env)?;
    let file_source = |k: Key| Source::File {
        path: file.map(|f| f.path.to_owned()).unwrap_or_default(),
        line: parsed.lines.get(&k).copied().unwrap_or(0),
    };
    fn pick<T: Clone>(
        key: Key,
        flag: &Option<T>,
        env: &Option<T>,
        file: &Option<T>,
        default: &Option<T>,
        file_source: &dyn Fn(Key) -> Source,
    ) -> Setting<T> {
        let (value, source) = if flag.is_some() {
            (flag.clone(), Source::Flag)
        } else if env.is_some() {
            (env.clone(), Source::Env(key.env()))
        } else if file.is_some() {
            (file.clone(), file_source(key))
        } else if default.is_some() {
            (default.clone(), Source::Default)
        } else {
            (None, Source::Unset)
        };
        Setting { value, source }
    }
    let (f, e, c, d) = (flags, &env_values, &parsed.config, defaults);
    let fs: &dyn Fn(Key) -> Source = &file_source;
    Ok(Resolved {
        db: pick(Key::Db, &f.db, &e.db, &c.db, &d.db, fs),
        cluster_db: pick(Key::ClusterDb, &f.cluster_db, &e.cluster_db, &c.cluster_db, &d.cluster_db, fs),
        db_dir: pick(Key::DbDir, &f.db_dir, &e.db_dir, &c.db_dir, &d.db_dir, fs),
        host_name: pick(Key::HostName, &f.host_name, &e.host_name, &c.host_name, &d.host_name, fs),
        underlay_ip: pick(Key::UnderlayIp, &f.underlay_ip, &e.underlay_ip, &c.underlay_ip, &d.underlay_ip, fs),
        tunnel: pick(Key::Tunnel, &f.tunnel, &e.tunnel, &c.tunnel, &d.tunnel, fs),
        bridge: pick(Key::Bridge, &f.bridge, &e.bridge, &c.bridge, &d.bridge, fs),
        docker_plugin: pick(
            Key::DockerPlugin,
            &f.docker_plugin,
            &e.docker_plugin,
            &c.docker_plugin,
            &d.docker_plugin,
            fs,
        ),
        private_key: pick(Key::PrivateKey, &f.private_key, &e.private_key, &c.private_key, &d.private_key, fs),
        certificate: pick(Key::Certificate, &f.certificate, &e.certificate, &c.certificate, &d.certificate, fs),
        ca_cert: pick(Key::CaCert, &f.ca_cert, &e.ca_cert, &c.ca_cert, &d.ca_cert, fs),
    })
}

/// The environment variables, one a line, for `--help`.
pub fn env_help() -> String {
    let mut out =
        String::from("Environment (a flag wins over its variable, a variable over the configuration file):\n");
    out.push_str(&format!("  {CONFIG_ENV:<20} the configuration file (default {DEFAULT_PATH}), like --config\n"));
    for k in Key::ALL {
        out.push_str(&format!("  {:<20} {} in the file, like {}\n", k.env(), k.name(), k.flag()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    const PATH: &str = "/etc/ovsnet/ovsnet.conf";

    fn file(text: &str) -> FileText<'_> {
        FileText { path: Path::new(PATH), text }
    }

    fn err_line(text: &str) -> String {
        match parse_file(file(text)) {
            Err(e) => {
                let line = e.to_string();
                assert!(!line.contains('\n'), "one line: {line}");
                line
            }
            Ok(p) => panic!("accepted: {p:?}"),
        }
    }

    #[test]
    fn a_full_file_parses_with_the_line_of_each_key() {
        let text = "# ovsnet\n\
            db = \"unix:/run/openvswitch/db.sock\"\n\
            cluster_db = \"tcp:10.0.0.1:6650,tcp:10.0.0.2:6650\"\n\
            host_name = \"h1\"\n\
            underlay_ip = \"192.168.56.11\"\n\
            tunnel = [\"geneve\", \"vxlan\"]\n\
            bridge = \"br-int\"\n\
            \n\
            private_key = \"/etc/ovsnet/key.pem\"\n\
            certificate = \"/etc/ovsnet/cert.pem\"\n\
            ca_cert = \"/etc/ovsnet/ca.pem\"\n";
        let p = parse_file(file(text)).expect("parses");
        assert_eq!(p.config.db.as_deref(), Some("unix:/run/openvswitch/db.sock"));
        assert_eq!(p.config.underlay_ip, Some("192.168.56.11".parse().expect("ip")));
        assert_eq!(p.config.tunnel, Some(vec![Tunnel::Geneve, Tunnel::Vxlan]));
        assert_eq!(p.config.ca_cert, Some(PathBuf::from("/etc/ovsnet/ca.pem")));
        assert_eq!(p.lines[&Key::Db], 2);
        assert_eq!(p.lines[&Key::Tunnel], 6);
        assert_eq!(p.lines[&Key::PrivateKey], 9);
        assert_eq!(p.lines[&Key::CaCert], 11);
    }

    #[test]
    fn one_tunnel_is_a_list_of_one() {
        let p = parse_file(file("tunnel = \"gre\"\n")).expect("parses");
        assert_eq!(p.config.tunnel, Some(vec![Tunnel::Gre]));
    }

    #[test]
    fn an_empty_file_sets_nothing() {
        let p = parse_file(file("# nothing\n\n")).expect("parses");
        assert_eq!(p, ParsedFile::default());
    }

    #[test]
    fn an_unknown_key_names_file_line_and_key() {
        let e = err_line("db = \"unix:/x\"\n\ncolour = \"blue\"\n");
        assert!(e.starts_with("/etc/ovsnet/ovsnet.conf:3: colour: unknown key"), "{e}");
        assert!(e.contains("cluster_db"), "lists the keys: {e}");
    }

    #[test]
    fn an_unknown_section_names_file_line_and_section() {
        let e = err_line("db = \"unix:/x\"\n[agent]\nbridge = \"obr0\"\n");
        assert!(e.starts_with("/etc/ovsnet/ovsnet.conf:2: agent: unknown section"), "{e}");
    }

    #[test]
    fn a_bad_address_names_file_line_and_key() {
        let e = err_line("host_name = \"h1\"\nunderlay_ip = \"10.0.0.300\"\n");
        assert!(e.starts_with("/etc/ovsnet/ovsnet.conf:2: underlay_ip: "), "{e}");
        assert!(e.to_lowercase().contains("ip address"), "{e}");
    }

    #[test]
    fn a_wrong_type_names_file_line_and_key() {
        let e = err_line("# x\n\n\nbridge = 5\n");
        assert!(e.starts_with("/etc/ovsnet/ovsnet.conf:4: bridge: "), "{e}");
        assert!(e.contains("invalid type"), "{e}");
        let e = err_line("db = \"unix:/x\"\ncluster_db = [\"tcp:1.2.3.4:6650\"]\n");
        assert!(e.starts_with("/etc/ovsnet/ovsnet.conf:2: cluster_db: "), "{e}");
    }

    #[test]
    fn a_bad_tunnel_names_file_line_and_key() {
        let e = err_line("tunnel = \"ipip\"\n");
        assert!(e.starts_with("/etc/ovsnet/ovsnet.conf:1: tunnel: "), "{e}");
        let e = err_line("db = \"unix:/x\"\ntunnel = [\n  \"vxlan\",\n  \"stt\",\n]\n");
        assert!(e.starts_with("/etc/ovsnet/ovsnet.conf:2: tunnel: "), "{e}");
        let e = err_line("tunnel = 4789\n");
        assert!(e.starts_with("/etc/ovsnet/ovsnet.conf:1: tunnel: "), "{e}");
    }

    #[test]
    fn a_syntax_error_names_file_and_line() {
        let e = err_line("db = \"unix:/x\"\nhost_name = h1\n");
        assert!(e.starts_with("/etc/ovsnet/ovsnet.conf:2: "), "{e}");
        let e = err_line("db = \"unix:/x\"\ndb = \"unix:/y\"\n");
        assert!(e.starts_with("/etc/ovsnet/ovsnet.conf:2: "), "{e}");
    }

    #[test]
    fn precedence_is_flag_then_env_then_file_then_default() {
        let text = "db = \"unix:/file.sock\"\ncluster_db = \"tcp:10.0.0.9:6650\"\nhost_name = \"from-file\"\nbridge = \"br-file\"\n";
        let flags = Config { db: Some("unix:/flag.sock".into()), ..Config::default() };
        let env = env(&[("OVSNET_DB", "unix:/env.sock"), ("OVSNET_CLUSTER_DB", "tcp:10.0.0.1:6650")]);
        let defaults = Config {
            db: Some("unix:/default.sock".into()),
            bridge: Some("obr0".into()),
            tunnel: Some(vec![Tunnel::Vxlan]),
            ..Config::default()
        };
        let r = resolve(&flags, &env, Some(file(text)), &defaults).expect("resolves");
        assert_eq!(r.db, Setting { value: Some("unix:/flag.sock".into()), source: Source::Flag });
        assert_eq!(
            r.cluster_db,
            Setting { value: Some("tcp:10.0.0.1:6650".into()), source: Source::Env("OVSNET_CLUSTER_DB") }
        );
        assert_eq!(r.host_name.value.as_deref(), Some("from-file"));
        assert_eq!(r.host_name.source, Source::File { path: PATH.into(), line: 3 });
        assert_eq!(r.bridge.value.as_deref(), Some("br-file"));
        assert_eq!(r.tunnel, Setting { value: Some(vec![Tunnel::Vxlan]), source: Source::Default });
        assert_eq!(r.underlay_ip, Setting { value: None, source: Source::Unset });
    }

    #[test]
    fn each_layer_alone_gives_its_source() {
        let no_env = BTreeMap::new();
        let defaults = Config { host_name: Some("d".into()), ..Config::default() };
        let r = resolve(&Config::default(), &no_env, None, &defaults).expect("resolves");
        assert_eq!(r.host_name.source, Source::Default);
        let r = resolve(&Config::default(), &no_env, Some(file("host_name = \"f\"")), &defaults).expect("resolves");
        assert_eq!(r.host_name.source, Source::File { path: PATH.into(), line: 1 });
        let e = env(&[("OVSNET_HOST_NAME", "e")]);
        let r = resolve(&Config::default(), &e, Some(file("host_name = \"f\"")), &defaults).expect("resolves");
        assert_eq!(r.host_name, Setting { value: Some("e".into()), source: Source::Env("OVSNET_HOST_NAME") });
        let flags = Config { host_name: Some("x".into()), ..Config::default() };
        let r = resolve(&flags, &e, Some(file("host_name = \"f\"")), &defaults).expect("resolves");
        assert_eq!(r.host_name, Setting { value: Some("x".into()), source: Source::Flag });
    }

    #[test]
    fn every_key_has_its_variable() {
        let e = env(&[
            ("OVSNET_DB", "unix:/a"),
            ("OVSNET_CLUSTER_DB", "tcp:1.1.1.1:6650"),
            ("OVSNET_DB_DIR", "/d"),
            ("OVSNET_HOST_NAME", "h"),
            ("OVSNET_UNDERLAY_IP", " fd00::1 "),
            ("OVSNET_TUNNEL", "gre, geneve"),
            ("OVSNET_BRIDGE", "br0"),
            ("OVSNET_DOCKER_PLUGIN", "/p.sock"),
            ("OVSNET_PRIVATE_KEY", "/k"),
            ("OVSNET_CERTIFICATE", "/c"),
            ("OVSNET_CA_CERT", "/ca"),
        ]);
        let r = resolve(&Config::default(), &e, None, &Config::default()).expect("resolves");
        for k in Key::ALL {
            let (value, source) = r.shown(k);
            assert!(value.is_some(), "{k} set");
            assert_eq!(*source, Source::Env(k.env()), "{k}");
        }
        assert_eq!(r.underlay_ip.value, Some("fd00::1".parse().expect("ip")));
        assert_eq!(r.tunnel.value, Some(vec![Tunnel::Gre, Tunnel::Geneve]));
        assert_eq!(r.shown(Key::Tunnel).0.as_deref(), Some("gre,geneve"));
    }

    #[test]
    fn an_empty_variable_is_unset() {
        let e = env(&[("OVSNET_CLUSTER_DB", "")]);
        let r = resolve(&Config::default(), &e, Some(file("cluster_db = \"tcp:10.0.0.1:6650\"\n")), &Config::default())
            .expect("resolves");
        assert!(matches!(r.cluster_db.source, Source::File { line: 1, .. }));
    }

    #[test]
    fn a_bad_variable_is_one_line_naming_it() {
        let e = env(&[("OVSNET_UNDERLAY_IP", "10.0.0")]);
        let err = resolve(&Config::default(), &e, None, &Config::default()).expect_err("refused");
        assert!(err.to_string().starts_with("OVSNET_UNDERLAY_IP=\"10.0.0\": "), "{err}");
        let e = env(&[("OVSNET_TUNNEL", "vxlan,ipip")]);
        let err = resolve(&Config::default(), &e, None, &Config::default()).expect_err("refused");
        assert!(err.to_string().contains("ipip"), "{err}");
    }

    #[test]
    fn a_bad_file_is_an_error_even_when_flags_set_everything() {
        let flags = Config { bridge: Some("obr0".into()), ..Config::default() };
        let err = resolve(&flags, &BTreeMap::new(), Some(file("bridge = 1\n")), &Config::default()).expect_err("bad");
        assert!(matches!(err, ConfigError::File { line: 1, .. }), "{err}");
    }

    #[test]
    fn the_config_path_is_flag_then_env_then_default() {
        let e = env(&[(CONFIG_ENV, "/tmp/env.conf")]);
        let p = config_path(Some(Path::new("/tmp/flag.conf")), &e);
        assert_eq!((p.path.as_path(), p.explicit()), (Path::new("/tmp/flag.conf"), true));
        let p = config_path(None, &e);
        assert_eq!(p.source, Source::Env(CONFIG_ENV));
        assert!(p.explicit());
        let p = config_path(None, &BTreeMap::new());
        assert_eq!((p.path.as_path(), p.explicit()), (Path::new(DEFAULT_PATH), false));
    }

    #[test]
    fn sources_print_as_config_show_prints_them() {
        assert_eq!(Source::Env("OVSNET_CLUSTER_DB").to_string(), "env OVSNET_CLUSTER_DB");
        assert_eq!(Source::File { path: PATH.into(), line: 4 }.to_string(), "file /etc/ovsnet/ovsnet.conf:4");
        assert_eq!(Source::Flag.to_string(), "flag");
    }

    #[test]
    fn the_packaged_example_sets_only_the_docker_plugin_and_every_key_uncommented() {
        let example = include_str!("../packaging/ovsnet.conf");
        let docker_plugin = Some(PathBuf::from("/run/docker/plugins/ovsnet.sock"));
        assert_eq!(parse_file(file(example)).expect("parses").config, Config { docker_plugin, ..Config::default() });
        let uncommented: String = example
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.contains(" = ") && !rest.starts_with(' ') => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let p = parse_file(file(&uncommented)).expect("parses uncommented");
        assert_eq!(p.lines.len(), Key::ALL.len(), "every key: {:?}", p.lines);
        assert_eq!(p.config.bridge.as_deref(), Some("obr0"));
        assert_eq!(p.config.tunnel, Some(vec![Tunnel::Vxlan]));
    }

    #[test]
    fn the_help_names_every_variable() {
        let h = env_help();
        for k in Key::ALL {
            assert!(h.contains(k.env()), "{k}");
        }
        assert!(h.contains(CONFIG_ENV));
    }
}
