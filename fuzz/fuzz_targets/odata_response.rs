#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    c4c_scim_bridge_fuzz::fuzz_odata_response(data);
});
