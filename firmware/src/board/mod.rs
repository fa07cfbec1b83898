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

/// Counts instructions with SysTick under QEMU, core clock cycles on a board.
///
/// Under QEMU's `-icount shift=6` every instruction advances the virtual
/// clock by 64 ns, and SysTick ticks at the MPS2 boards' 25 MHz, so a tick is
/// not an instruction: at boot the counter times a loop of exactly
/// [`CALIBRATION_INSTRUCTIONS`] instructions and [`Counter::since`] converts.
#[cfg(target_os = "none")]
pub struct Counter {
    syst: cortex_m::peripheral::SYST,
    /// Ticks of the calibration loop (0 on a board: ticks are cycles).
    calibration: u32,
}

#[cfg(target_os = "none")]
use lflow_core::wire::CALIBRATION_INSTRUCTIONS;

#[cfg(target_os = "none")]
impl Counter {
    /// Free-running 24-bit down counter on the core clock.
    pub fn new(mut syst: cortex_m::peripheral::SYST) -> Counter {
        syst.set_clock_source(cortex_m::peripheral::syst::SystClkSource::Core);
        syst.set_reload(0x00FF_FFFF);
        syst.clear_current();
        syst.enable_counter();
        let mut counter = Counter { syst, calibration: 0 };
        if cfg!(feature = "qemu") && !cfg!(feature = "stm32h7") {
            let start = counter.now();
            calibration_loop();
            counter.calibration = counter.ticks_since(start);
        }
        counter
    }

    /// The counter's current value.
    pub fn now(&self) -> u32 {
        cortex_m::peripheral::SYST::get_current()
    }

    /// Raw ticks from `start` to now (one wrap of the 24-bit counter at most).
    fn ticks_since(&self, start: u32) -> u32 {
        let _ = &self.syst;
        start.wrapping_sub(self.now()) & 0x00FF_FFFF
    }

    /// Instructions (QEMU) or cycles (a board) from `start` to now.
    pub fn since(&self, start: u32) -> u32 {
        let ticks = u64::from(self.ticks_since(start));
        match self.calibration {
            0 => ticks as u32,
            cal => (ticks * u64::from(CALIBRATION_INSTRUCTIONS) / u64::from(cal)).min(u64::from(u32::MAX)) as u32,
        }
    }

    /// Ticks of the calibration loop (0 on a board).
    pub fn calibration(&self) -> u32 {
        self.calibration
    }
}

/// Exactly [`CALIBRATION_INSTRUCTIONS`] instructions: `subs` and `bne`, half as many times each.
#[cfg(target_os = "none")]
fn calibration_loop() {
    const { assert!(CALIBRATION_INSTRUCTIONS.is_multiple_of(2)) };
    // SAFETY: register arithmetic only.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, {n}, #1",
            "bne 2b",
            n = inout(reg) CALIBRATION_INSTRUCTIONS / 2 => _,
            options(nomem, nostack),
        );
    }
}
