//! RFC 7047 OVSDB client.
