//! The pure logic of tracked QR codes: everything a redirect, a scan record and an analytics
//! answer need that is not I/O.
//!
//! - [`slug`]: random, unguessable short-link slugs and their syntax.
//! - [`utm`]: UTM parameters appended to a target URL.
//! - [`address`]: client addresses cut to IPv4 /24 and IPv6 /48.
//! - [`visitor`]: the visitor hash, keyed by a salt that lives one UTC day.
//! - [`agent`]: device class, OS and browser from the user agent (woothee), bots and link
//!   previewers (isbot's list plus the previewers it misses), referrer domains.
//! - [`vcard`]: the business card as vCard 3.0 (RFC 2426 escaping and folding).
//! - [`timeline`]: days of a period in a time zone, and which day an instant falls on.
//!
//! Invariants: no I/O, no clock (callers pass the time), no randomness of its own (callers
//! pass random bytes), no panics on any input.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
pub mod agent;
pub mod slug;
pub mod timeline;
pub mod utm;
pub mod vcard;
pub mod visitor;
