//! Named network namespaces (`/run/netns/NAME`), as `ip netns` keeps them.
