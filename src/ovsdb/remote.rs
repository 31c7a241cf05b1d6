//! Remotes as OVS spells them: `unix:PATH`, `tcp:IP[:PORT]`, `ssl:IP[:PORT]`,
//! IPv6 addresses in brackets (`tcp:[::1]:6641`), and comma-separated lists
//! of them for the members of a clustered database.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::Error;

/// OVSDB's IANA port, used when a `tcp:` or `ssl:` remote names none.
pub const DEFAULT_PORT: u16 = 6640;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Remote {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
    Ssl { host: String, port: u16 },
}

impl Remote {
    /// Parses a comma-separated list of remotes; the error names the bad one.
    pub fn parse(list: &str) -> Result<Vec<Remote>, Error> {
        let remotes = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Remote::from_str)
            .collect::<Result<Vec<_>, _>>()?;
        if remotes.is_empty() {
            return Err(Error::Remote(format!("{list:?}: no remote given")));
        }
        Ok(remotes)
    }

    /// Whether the server probes this connection with echo (TCP and SSL).
    pub fn is_inet(&self) -> bool {
        !matches!(self, Remote::Unix(_))
    }
}

fn host_port(remote: &str, rest: &str) -> Result<(String, u16), Error> {
    let bad = |why: &str| Error::Remote(format!("{remote:?}: {why}"));
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, after) = r.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("expected ':' after ']'"))?),
        };
        (h, port)
    } else {
        match rest.split_once(':') {
            Some((h, p)) if !p.contains(':') => (h, Some(p)),
            Some(_) => return Err(bad("IPv6 addresses need brackets, as in tcp:[::1]:6641")),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(bad("missing address"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p.parse().map_err(|_| bad(&format!("bad port {p:?}")))?,
    };
    Ok((host.to_owned(), port))
}

impl FromStr for Remote {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(Error::Remote(format!("{s:?}: missing socket path")));
            }
            return Ok(Remote::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("tcp:") {
            let (host, port) = host_port(s, rest)?;
            return Ok(Remote::Tcp { host, port });
        }
        if let Some(rest) = s.strip_prefix("ssl:") {
            let (host, port) = host_port(s, rest)?;
            return Ok(Remote::Ssl { host, port });
        }
        Err(Error::Remote(format!("{s:?}: expected unix:PATH, tcp:IP:PORT or ssl:IP:PORT")))
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hp = |f: &mut fmt::Formatter<'_>, kind: &str, host: &str, port: u16| {
            if host.contains(':') { write!(f, "{kind}:[{host}]:{port}") } else { write!(f, "{kind}:{host}:{port}") }
        };
        match self {
            Remote::Unix(p) => write!(f, "unix:{}", p.display()),
            Remote::Tcp { host, port } => hp(f, "tcp", host, *port),
            Remote::Ssl { host, port } => hp(f, "ssl", host, *port),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_ovs_spellings() {
        let r = Remote::parse("unix:/x/db.sock,tcp:127.0.0.1:6641, ssl:[::1]:6643,tcp:10.0.0.1").unwrap();
        assert_eq!(
            r,
            vec![
                Remote::Unix("/x/db.sock".into()),
                Remote::Tcp { host: "127.0.0.1".into(), port: 6641 },
                Remote::Ssl { host: "::1".into(), port: 6643 },
                Remote::Tcp { host: "10.0.0.1".into(), port: 6640 },
            ]
        );
        let shown: Vec<String> = r.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["unix:/x/db.sock", "tcp:127.0.0.1:6641", "ssl:[::1]:6643", "tcp:10.0.0.1:6640"]);
    }

    #[test]
    fn errors_name_the_bad_remote() {
        for (bad, needle) in [
            ("unix:/a,udp:1.2.3.4:5", "\"udp:1.2.3.4:5\""),
            ("tcp:1.2.3.4:http", "bad port"),
            ("tcp:::1:6640", "brackets"),
            ("ssl:[::1", "unclosed"),
            ("unix:", "missing socket path"),
            ("", "no remote"),
        ] {
            let e = Remote::parse(bad).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
