#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    c4c_scim_bridge_fuzz::fuzz_resource(data);
});
