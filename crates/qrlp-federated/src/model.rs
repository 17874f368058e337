//! Model-agnostic parameters: one flat `f32` vector and the list of named tensors it holds.
//!
//! Every strategy, the DP mechanism and the local models exchange [`Parameters`]. The shape
//! is what lets the server reject an update of the wrong model before it touches an
//! aggregate: two parameter sets are compatible only when their shapes are equal.

use serde::{Deserialize, Serialize};

/// Why a shape or a parameter vector was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// A tensor has no name, or two tensors share one.
    #[error("tensor name {0:?} is empty or repeated")]
    BadName(String),
    /// A tensor has a zero dimension or its size overflows `usize`.
    #[error("tensor {0:?} has an empty or overflowing dimension")]
    BadDims(String),
    /// The flat vector does not have as many values as the shape describes.
    #[error("expected {expected} values, got {actual}")]
    Length {
        /// Values the shape describes.
        expected: usize,
        /// Values given.
        actual: usize,
    },
    /// A value is NaN or infinite.
    #[error("value {index} is not finite")]
    NonFinite {
        /// Position in the flat vector.
        index: usize,
    },
    /// Two parameter sets describe different models.
    #[error("the parameters belong to a different model shape")]
    Mismatch,
}

/// One named tensor, stored row-major in the flat vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpec {
    /// Name, unique within the model (for example `"hidden.weight"`).
    pub name: String,
    /// Dimensions; the tensor holds their product of values.
    pub dims: Vec<usize>,
}

impl TensorSpec {
    /// A tensor called `name` with dimensions `dims`.
    pub fn new(name: impl Into<String>, dims: impl Into<Vec<usize>>) -> Self {
        Self {
            name: name.into(),
            dims: dims.into(),
        }
    }

    fn size(&self) -> Option<usize> {
        self.dims.iter().try_fold(
            1usize,
            |acc, &d| if d == 0 { None } else { acc.checked_mul(d) },
        )
    }
}

/// The layout of a model's parameters: its tensors in storage order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<TensorSpec>", into = "Vec<TensorSpec>")]
pub struct ModelShape {
    tensors: Vec<TensorSpec>,
    len: usize,
}

impl ModelShape {
    /// Checks the tensors (non-empty unique names, non-zero dimensions) and builds the shape.
    pub fn new(tensors: Vec<TensorSpec>) -> Result<Self, ShapeError> {
        let mut len = 0usize;
        for (i, t) in tensors.iter().enumerate() {
            if t.name.is_empty() || tensors[..i].iter().any(|o| o.name == t.name) {
                return Err(ShapeError::BadName(t.name.clone()));
            }
            let size = t
                .size()
                .ok_or_else(|| ShapeError::BadDims(t.name.clone()))?;
            len = len
                .checked_add(size)
                .ok_or_else(|| ShapeError::BadDims(t.name.clone()))?;
        }
        Ok(Self { tensors, len })
    }

    /// A single unnamed-looking tensor `"values"` of `len` values (tests, plain vectors).
    pub fn flat(len: usize) -> Result<Self, ShapeError> {
        Self::new(vec![TensorSpec::new("values", [len])])
    }

    /// The tensors in storage order.
    pub fn tensors(&self) -> &[TensorSpec] {
        &self.tensors
    }

    /// Total number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a shape without tensors.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where tensor `name` sits in the flat vector.
    pub fn range_of(&self, name: &str) -> Option<std::ops::Range<usize>> {
        let mut start = 0;
        for t in &self.tensors {
            let size = t.size().unwrap_or(0);
            if t.name == name {
                return Some(start..start + size);
            }
            start += size;
        }
        None
    }

    /// Checks that `values` fits this shape and holds only finite numbers.
    pub fn check(&self, values: &[f32]) -> Result<(), ShapeError> {
        if values.len() != self.len {
            return Err(ShapeError::Length {
                expected: self.len,
                actual: values.len(),
            });
        }
        match values.iter().position(|v| !v.is_finite()) {
            Some(index) => Err(ShapeError::NonFinite { index }),
            None => Ok(()),
        }
    }
}

impl TryFrom<Vec<TensorSpec>> for ModelShape {
    type Error = ShapeError;
    fn try_from(tensors: Vec<TensorSpec>) -> Result<Self, ShapeError> {
        Self::new(tensors)
    }
}

impl From<ModelShape> for Vec<TensorSpec> {
    fn from(shape: ModelShape) -> Self {
        shape.tensors
    }
}

/// A model's parameters: finite values laid out as the shape says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawParameters", into = "RawParameters")]
pub struct Parameters {
    shape: ModelShape,
    values: Vec<f32>,
}

#[derive(Serialize, Deserialize)]
struct RawParameters {
    shape: ModelShape,
    values: Vec<f32>,
}

impl TryFrom<RawParameters> for Parameters {
    type Error = ShapeError;
    fn try_from(raw: RawParameters) -> Result<Self, ShapeError> {
        Self::new(raw.shape, raw.values)
    }
}

impl From<Parameters> for RawParameters {
    fn from(p: Parameters) -> Self {
        Self {
            shape: p.shape,
            values: p.values,
        }
    }
}

impl Parameters {
    /// Checks `values` against `shape` (length, finiteness).
    pub fn new(shape: ModelShape, values: Vec<f32>) -> Result<Self, ShapeError> {
        shape.check(&values)?;
        Ok(Self { shape, values })
    }

    /// All zeros.
    pub fn zeros(shape: ModelShape) -> Self {
        let values = vec![0.0; shape.len()];
        Self { shape, values }
    }

    /// The layout.
    pub fn shape(&self) -> &ModelShape {
        &self.shape
    }

    /// The flat values.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The values of tensor `name`.
    pub fn tensor(&self, name: &str) -> Option<&[f32]> {
        self.shape.range_of(name).map(|r| &self.values[r])
    }

    /// Takes the flat values out.
    pub fn into_values(self) -> Vec<f32> {
        self.values
    }

    /// Same shape, new values (checked).
    pub fn with_values(&self, values: Vec<f32>) -> Result<Self, ShapeError> {
        Self::new(self.shape.clone(), values)
    }

    /// Values converted from an `f64` accumulator. Fails if a value overflows `f32`.
    pub(crate) fn from_f64(shape: &ModelShape, values: &[f64]) -> Result<Self, ShapeError> {
        Self::new(shape.clone(), values.iter().map(|&v| v as f32).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_counts_and_locates_tensors() {
        let shape = ModelShape::new(vec![
            TensorSpec::new("w", [3, 2]),
            TensorSpec::new("b", [2]),
        ])
        .unwrap();
        assert_eq!(shape.len(), 8);
        assert_eq!(shape.range_of("b"), Some(6..8));
        assert_eq!(shape.range_of("x"), None);
    }

    #[test]
    fn bad_shapes_and_vectors_are_refused() {
        let dup = vec![TensorSpec::new("w", [1]), TensorSpec::new("w", [1])];
        assert!(matches!(ModelShape::new(dup), Err(ShapeError::BadName(_))));
        let zero = vec![TensorSpec::new("w", [3, 0])];
        assert!(matches!(ModelShape::new(zero), Err(ShapeError::BadDims(_))));
        let huge = vec![TensorSpec::new("w", [usize::MAX, 2])];
        assert!(matches!(ModelShape::new(huge), Err(ShapeError::BadDims(_))));

        let shape = ModelShape::flat(2).unwrap();
        assert_eq!(
            Parameters::new(shape.clone(), vec![1.0]),
            Err(ShapeError::Length {
                expected: 2,
                actual: 1
            })
        );
        assert_eq!(
            Parameters::new(shape, vec![1.0, f32::NAN]),
            Err(ShapeError::NonFinite { index: 1 })
        );
    }

    #[test]
    fn parameters_round_trip_through_json_and_are_checked() {
        let shape = ModelShape::new(vec![TensorSpec::new("w", [2])]).unwrap();
        let p = Parameters::new(shape, vec![0.5, -1.0]).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Parameters>(&json).unwrap(), p);
        let wrong = r#"{"shape":[{"name":"w","dims":[2]}],"values":[1.0]}"#;
        assert!(serde_json::from_str::<Parameters>(wrong).is_err());
    }
}
