//! Private Open vSwitch instances.
