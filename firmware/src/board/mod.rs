//! One module per target: the serial port and the instruction counter.

#[cfg(all(target_os = "none", feature = "qemu", not(feature = "stm32h7")))]
mod qemu;
#[cfg(all(target_os = "none", feature = "qemu", not(feature = "stm32h7")))]
pub use qemu::*;

#[cfg(all(target_os = "none", feature = "stm32h7"))]
mod stm32h7;
#[cfg(all(target_os = "none", feature = "stm32h7"))]
pub use stm32h7::*;

#[cfg(not(target_os = "none"))]
mod host;
#[cfg(not(target_os = "none"))]
pub use host::*;

/// A byte-wide serial port.
pub trait Serial {
    /// A received byte, if one is waiting.
    fn read(&mut self) -> Option<u8>;
    /// Send a byte (waits while the transmitter is full).
    fn write(&mut self, byte: u8);
    /// Send bytes.
    fn write_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write(b);
        }
    }
}

/// Counts instructions (cycles) with SysTick: under QEMU's `-icount` it
/// counts instructions exactly; on a board, core clock cycles.
#[cfg(target_os = "none")]
pub struct Counter {
    syst: cortex_m::peripheral::SYST,
}

#[cfg(target_os = "none")]
impl Counter {
    /// Free-running 24-bit down counter on the core clock.
    pub fn new(mut syst: cortex_m::peripheral::SYST) -> Counter {
        syst.set_clock_source(cortex_m::peripheral::syst::SystClkSource::Core);
        syst.set_reload(0x00FF_FFFF);
        syst.clear_current();
        syst.enable_counter();
        Counter { syst }
    }

    /// The counter's current value.
    pub fn now(&self) -> u32 {
        cortex_m::peripheral::SYST::get_current()
    }

    /// Ticks from `start` to now (one wrap of the 24-bit counter at most).
    pub fn since(&self, start: u32) -> u32 {
        let _ = &self.syst;
        start.wrapping_sub(self.now()) & 0x00FF_FFFF
    }
}
