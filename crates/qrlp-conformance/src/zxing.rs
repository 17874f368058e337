//! zxing-cpp, the decoder behind many phone apps, from PyPI (`pip install zxing-cpp pillow`;
//! `scripts/install-test-extras.sh` does it and `.ci/run` calls that script).
//!
//! One Python process reads a whole batch of images, so thousands of symbols cost seconds,
//! not a process start each.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Reads image paths from standard input, one a line; prints for each the UTF-8 text and the
/// raw bytes (both in hex) of the one symbol of the format named in argv[1], or `NONE`.
const READER: &str = r#"
import sys, zxingcpp, PIL.Image as I
want = sys.argv[1]
fmt = getattr(zxingcpp.BarcodeFormat, want)
for path in sys.stdin.read().splitlines():
    with I.open(path) as img:
        found = [r for r in zxingcpp.read_barcodes(img, formats=fmt) if r.format.name == want]
    if len(found) == 1:
        print(found[0].text.encode("utf-8", "surrogateescape").hex(), found[0].bytes.hex())
    else:
        print("NONE")
"#;

/// What zxing-cpp read from one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The text, as zxing-cpp renders it (ECI and character set applied).
    pub text: String,
    /// The raw bytes of the message.
    pub bytes: Vec<u8>,
}

/// `Ok` when `python3` can import zxing-cpp and Pillow, otherwise why not.
pub fn available() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import zxingcpp, PIL"])
        .output()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Whether a test that needs zxing-cpp can run. Where it is missing the test prints why and
/// should return; under CI (`CI` set, as on the CI runner) a missing decoder is a failure,
/// so the check can never pass by skipping there.
///
/// # Panics
/// Under CI, when zxing-cpp is unavailable.
pub fn ready(test: &str) -> bool {
    match available() {
        Ok(()) => true,
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("{test}: zxing-cpp is required under CI but unavailable ({why}); run scripts/install-test-extras.sh")
        }
        Err(why) => {
            eprintln!("SKIPPED {test}: zxing-cpp unavailable ({why}); scripts/install-test-extras.sh installs it");
            false
        }
    }
}

/// Decodes each image with zxing-cpp, looking for `format` (`QRCode`, `MicroQRCode`): one
/// entry per path, `None` when it found no symbol or more than one. The paths are split
/// over `processes` Python processes run side by side.
///
/// # Panics
/// When Python fails: in these tests that is a broken setup, not a decoding result.
pub fn read(format: &str, paths: &[PathBuf], processes: usize) -> Vec<Option<Decoded>> {
    if paths.is_empty() {
        return Vec::new();
    }
    let per = paths.len().div_ceil(processes.max(1));
    let children: Vec<_> = paths
        .chunks(per)
        .map(|chunk| {
            let mut child = Command::new("python3")
                .arg("-c")
                .arg(READER)
                .arg(format)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("python3 starts");
            let list: String = chunk.iter().map(|p| format!("{}\n", p.display())).collect();
            child
                .stdin
                .take()
                .expect("piped stdin")
                .write_all(list.as_bytes())
                .expect("paths written");
            (chunk.len(), child)
        })
        .collect();
    // Each child's output is drained on its own thread, so none waits on a full pipe.
    let outputs: Vec<_> = std::thread::scope(|s| {
        let waits: Vec<_> = children
            .into_iter()
            .map(|(n, child)| s.spawn(move || (n, child.wait_with_output())))
            .collect();
        waits
            .into_iter()
            .map(|w| w.join().expect("reader thread"))
            .collect()
    });
    let mut out = Vec::with_capacity(paths.len());
    for (n, done) in outputs {
        let done = done.expect("python3 runs");
        assert!(
            done.status.success(),
            "zxing-cpp reader failed: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        let text = String::from_utf8(done.stdout).expect("hex output");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), n, "one line per image");
        out.extend(lines.into_iter().map(parse_line));
    }
    out
}

fn parse_line(line: &str) -> Option<Decoded> {
    let (text, bytes) = line.split_once(' ')?;
    Some(Decoded {
        text: String::from_utf8_lossy(&unhex(text)).into_owned(),
        bytes: unhex(bytes),
    })
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|k| u8::from_str_radix(&s[2 * k..2 * k + 2], 16).expect("hex digits"))
        .collect()
}
