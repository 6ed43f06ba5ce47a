//! JSON-RPC framing and envelopes, read without a full parse.

pub mod borrowed;
pub mod error;
pub mod frame;
pub mod head;
pub mod message;

pub use frame::{frame_stream, Frame, FrameReader, DEFAULT_MAX_FRAME};
pub use message::{Id, Kind, Message, MessageError, Parsed};
