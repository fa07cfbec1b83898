//! Which spike bin the encoder reads at bin `t` (MODEL.md sections 1 and 9).

/// The encoder's input schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InputSchedule {
    /// Paper mode: `x_0` at `t = 0`, `x_{t-1}` after (so `x_0` is read twice);
    /// outputs at bin `t` do not yet use `x_t`.
    PreviousBin,
    /// Streaming mode: `x_t` at bin `t`.
    CurrentBin,
}

impl InputSchedule {
    /// The blob's code.
    pub const fn code(self) -> u8 {
        match self {
            InputSchedule::PreviousBin => 0,
            InputSchedule::CurrentBin => 1,
        }
    }

    /// The schedule with blob code `code`, if any.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(InputSchedule::PreviousBin),
            1 => Some(InputSchedule::CurrentBin),
            _ => None,
        }
    }
}
