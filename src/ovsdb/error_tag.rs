//! The error strings of RFC 7047 (section 4.1.3 and the operations of
//! section 5.2), and those ovsdb-server adds, as a type: code matches on a
//! variant, never on a string.

use std::fmt;

/// The `error` member of a failed operation (or of a refused request).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorTag {
    /// A constraint of the schema would be broken (a duplicate in an
    /// index, a value out of range, too many rows).
    ConstraintViolation,
    /// A row would refer to a row that does not exist, or a row still
    /// referred to (strongly) would be deleted.
    ReferentialIntegrityViolation,
    /// A `wait` whose condition did not come true in time.
    TimedOut,
    /// An `abort` operation.
    Aborted,
    /// An `assert` on a lock this client does not own.
    NotOwner,
    /// A named UUID given twice.
    DuplicateUuidName,
    /// A value outside its column's type (`domain error`).
    DomainError,
    /// A value outside its column's range (`range error`).
    RangeError,
    /// The server lacked the resources (memory, disk) to go on.
    ResourcesExhausted,
    /// The server could not write its log.
    IoError,
    /// A request the server does not support.
    NotSupported,
    /// A transaction canceled by a `cancel` request.
    Canceled,
    /// ovsdb-server's own errors (`unknown database`, `syntax error`, ...),
    /// kept as they came.
    Other(String),
}

impl ErrorTag {
    /// The tag as it is on the wire.
    pub fn parse(s: &str) -> ErrorTag {
        match s {
            "constraint violation" => ErrorTag::ConstraintViolation,
            "referential integrity violation" => ErrorTag::ReferentialIntegrityViolation,
            "timed out" => ErrorTag::TimedOut,
            "aborted" => ErrorTag::Aborted,
            "not owner" => ErrorTag::NotOwner,
            "duplicate uuid-name" => ErrorTag::DuplicateUuidName,
            "domain error" => ErrorTag::DomainError,
            "range error" => ErrorTag::RangeError,
            "resources exhausted" => ErrorTag::ResourcesExhausted,
            "I/O error" => ErrorTag::IoError,
            "not supported" => ErrorTag::NotSupported,
            "canceled" => ErrorTag::Canceled,
            other => ErrorTag::Other(other.to_owned()),
        }
    }

    /// The tag as it is on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorTag::ConstraintViolation => "constraint violation",
            ErrorTag::ReferentialIntegrityViolation => "referential integrity violation",
            ErrorTag::TimedOut => "timed out",
            ErrorTag::Aborted => "aborted",
            ErrorTag::NotOwner => "not owner",
            ErrorTag::DuplicateUuidName => "duplicate uuid-name",
            ErrorTag::DomainError => "domain error",
            ErrorTag::RangeError => "range error",
            ErrorTag::ResourcesExhausted => "resources exhausted",
            ErrorTag::IoError => "I/O error",
            ErrorTag::NotSupported => "not supported",
            ErrorTag::Canceled => "canceled",
            ErrorTag::Other(s) => s,
        }
    }
}

impl fmt::Display for ErrorTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_reads_back_as_itself() {
        let all = [
            ErrorTag::ConstraintViolation,
            ErrorTag::ReferentialIntegrityViolation,
            ErrorTag::TimedOut,
            ErrorTag::Aborted,
            ErrorTag::NotOwner,
            ErrorTag::DuplicateUuidName,
            ErrorTag::DomainError,
            ErrorTag::RangeError,
            ErrorTag::ResourcesExhausted,
            ErrorTag::IoError,
            ErrorTag::NotSupported,
            ErrorTag::Canceled,
            ErrorTag::Other("unknown database".into()),
        ];
        for t in all {
            assert_eq!(ErrorTag::parse(t.as_str()), t);
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!(ErrorTag::parse("syntax error"), ErrorTag::Other("syntax error".into()));
    }
}
