//! QEMU `mps2-an500` (Cortex-M7): CMSDK APB UART0 at 0x4000_4000, polled.

use super::Serial;

const UART0: usize = 0x4000_4000;
const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const BAUDDIV: usize = 0x10;
const TX_FULL: u32 = 1 << 0;
const RX_FULL: u32 = 1 << 1;

fn reg(offset: usize) -> *mut u32 {
    (UART0 + offset) as *mut u32
}

/// The CMSDK UART.
pub struct Uart(());

impl Uart {
    fn state(&self) -> u32 {
        // SAFETY: a fixed, aligned MMIO register of the mps2-an500 memory map.
        unsafe { core::ptr::read_volatile(reg(STATE)) }
    }
}

impl Serial for Uart {
    fn read(&mut self) -> Option<u8> {
        if self.state() & RX_FULL == 0 {
            return None;
        }
        // SAFETY: as above; reading DATA pops the received byte.
        Some(unsafe { core::ptr::read_volatile(reg(DATA)) } as u8)
    }

    fn write(&mut self, byte: u8) {
        while self.state() & TX_FULL != 0 {}
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(reg(DATA), u32::from(byte)) }
    }
}

/// Bring up the UART (BAUDDIV must be at least 16 or QEMU drops TX).
pub fn serial() -> Uart {
    // SAFETY: as above; the only writer of these registers.
    unsafe {
        core::ptr::write_volatile(reg(BAUDDIV), 16);
        core::ptr::write_volatile(reg(CTRL), 0b11); // TX and RX enable
    }
    Uart(())
}

/// Stop the machine with a status (semihosting SYS_EXIT); the panic handler's
/// way out (a `panic-never` build has no caller).
#[cfg_attr(feature = "panic-never", allow(dead_code))]
pub fn exit(success: bool) -> ! {
    use cortex_m_semihosting::debug;
    debug::exit(if success { debug::EXIT_SUCCESS } else { debug::EXIT_FAILURE });
    loop {
        cortex_m::asm::wfi();
    }
}
