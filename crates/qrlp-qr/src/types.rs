//! Small value types that cannot hold a wrong value: versions, masks and ECC levels.

use std::fmt;

/// A QR Code version, 1 to 40. Version `v` is `17 + 4v` modules wide.
///
/// ```
/// use qrlp_qr::Version;
/// let v = Version::new(3).unwrap();
/// assert_eq!(v.width(), 29);
/// assert!(Version::new(41).is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(u8);

impl Version {
    /// The smallest version.
    pub const MIN: Version = Version(1);
    /// The largest version.
    pub const MAX: Version = Version(40);

    /// Returns the version if `n` is in 1..=40.
    pub const fn new(n: u8) -> Option<Version> {
        if n >= 1 && n <= 40 {
            Some(Version(n))
        } else {
            None
        }
    }

    /// The version number, 1..=40.
    pub const fn number(self) -> u8 {
        self.0
    }

    /// Width (and height) of the symbol in modules, without quiet zone.
    pub const fn width(self) -> usize {
        17 + 4 * self.0 as usize
    }

    /// Every version from 1 to 40 in order.
    pub fn all() -> impl Iterator<Item = Version> {
        (1..=40).map(Version)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A Micro QR Code version, M1 to M4. Version `Mk` is `9 + 2k` modules wide.
///
/// ```
/// use qrlp_qr::MicroVersion;
/// assert_eq!(MicroVersion::new(4).unwrap().width(), 17);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MicroVersion(u8);

impl MicroVersion {
    /// Returns the version if `n` is in 1..=4 (M1..M4).
    pub const fn new(n: u8) -> Option<MicroVersion> {
        if n >= 1 && n <= 4 {
            Some(MicroVersion(n))
        } else {
            None
        }
    }

    /// The version number, 1..=4.
    pub const fn number(self) -> u8 {
        self.0
    }

    /// Width (and height) in modules, without quiet zone.
    pub const fn width(self) -> usize {
        9 + 2 * self.0 as usize
    }

    /// M1 to M4 in order.
    pub fn all() -> impl Iterator<Item = MicroVersion> {
        (1..=4).map(MicroVersion)
    }
}

impl fmt::Display for MicroVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "M{}", self.0)
    }
}

/// The version of an encoded symbol: a QR Code version or a Micro QR version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SymbolVersion {
    /// QR Code, versions 1..=40.
    Normal(Version),
    /// Micro QR Code, M1..=M4.
    Micro(MicroVersion),
}

impl SymbolVersion {
    /// Width in modules.
    pub const fn width(self) -> usize {
        match self {
            SymbolVersion::Normal(v) => v.width(),
            SymbolVersion::Micro(v) => v.width(),
        }
    }

    /// The quiet zone the standard requires around the symbol, in modules:
    /// 4 for QR Code, 2 for Micro QR.
    pub const fn quiet_zone(self) -> usize {
        match self {
            SymbolVersion::Normal(_) => 4,
            SymbolVersion::Micro(_) => 2,
        }
    }
}

impl fmt::Display for SymbolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SymbolVersion::Normal(v) => v.fmt(f),
            SymbolVersion::Micro(v) => v.fmt(f),
        }
    }
}

/// A data mask pattern. QR Code uses patterns 0..=7; Micro QR uses 0..=3.
///
/// ```
/// use qrlp_qr::Mask;
/// assert_eq!(Mask::new(7).unwrap().number(), 7);
/// assert!(Mask::new(8).is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mask(u8);

impl Mask {
    /// Returns the mask if `n` is in 0..=7.
    pub const fn new(n: u8) -> Option<Mask> {
        if n <= 7 {
            Some(Mask(n))
        } else {
            None
        }
    }

    /// The mask number, 0..=7.
    pub const fn number(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Mask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Error correction level. Each level recovers roughly the given share of damaged codewords.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EcLevel {
    /// About 7 %.
    L,
    /// About 15 %.
    M,
    /// About 25 %.
    Q,
    /// About 30 %.
    H,
}

impl EcLevel {
    /// All four levels, weakest first.
    pub const ALL: [EcLevel; 4] = [EcLevel::L, EcLevel::M, EcLevel::Q, EcLevel::H];

    /// Index 0..=3 in the order L, M, Q, H.
    pub const fn ordinal(self) -> usize {
        self as usize
    }

    /// The two format-information bits the standard assigns to this level.
    pub(crate) const fn format_bits(self) -> u32 {
        match self {
            EcLevel::L => 1,
            EcLevel::M => 0,
            EcLevel::Q => 3,
            EcLevel::H => 2,
        }
    }

    /// The level's letter: `L`, `M`, `Q` or `H`.
    ///
    /// ```
    /// assert_eq!(qrlp_qr::EcLevel::Q.as_str(), "Q");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            EcLevel::L => "L",
            EcLevel::M => "M",
            EcLevel::Q => "Q",
            EcLevel::H => "H",
        }
    }

    /// The next stronger level, if any.
    pub const fn stronger(self) -> Option<EcLevel> {
        match self {
            EcLevel::L => Some(EcLevel::M),
            EcLevel::M => Some(EcLevel::Q),
            EcLevel::Q => Some(EcLevel::H),
            EcLevel::H => None,
        }
    }
}

impl fmt::Display for EcLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EcLevel {
    type Err = crate::EncodeError;

    /// Parses `L`, `M`, `Q` or `H`, in either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "L" | "l" => Ok(EcLevel::L),
            "M" | "m" => Ok(EcLevel::M),
            "Q" | "q" => Ok(EcLevel::Q),
            "H" | "h" => Ok(EcLevel::H),
            _ => Err(crate::EncodeError::InvalidEcLevel(
                s.chars().take(16).collect(),
            )),
        }
    }
}
