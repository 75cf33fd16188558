//! Pictures of runs (`--plot out.svg`): the timeline of one run, the distribution of
//! a sweep's key times across seeds, the bench's times against cluster size.

mod charts;
mod draw;
pub mod record;

pub use charts::{bench_svg, cdf_svg};
pub use draw::timeline_svg;
pub use record::{Recorder, Recording, Timeline};

/// Why a picture could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// Drawing or writing the file failed; nothing usable was written.
    #[error("drawing the picture: {0}")]
    Draw(String),
    /// The run recorded nothing to draw (it did not start); no file was written.
    #[error("the run recorded nothing to draw")]
    Empty,
}
