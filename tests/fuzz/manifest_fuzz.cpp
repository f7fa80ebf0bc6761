// libFuzzer harness: a manifest CSV through read_manifest_table (RFC 4180 fields, the path column,
// output names), then a property: every row written back with format_csv_row parses to itself.
#include <cstdlib>

#include "fuzz_input.hpp"
#include "vvae/manifest.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const vvae::fuzz::InputFile input(data, size);
  vvae::fuzz::refuse_or_pass([&] {
    const vvae::ManifestTable table = vvae::read_manifest_table(input.path());
    for (const auto& row : table.rows) {
      // After a first line, as in a file written by vvae (a byte-order mark counts only first).
      const auto again = vvae::parse_csv("x\n" + vvae::format_csv_row(row));
      const bool blank = row.size() == 1 && row[0].empty();  // a blank line is skipped
      if (!blank && (again.size() != 2 || again[1] != row)) std::abort();
    }
    for (size_t i = 0; i < table.entries.size(); ++i)
      for (size_t j = i + 1; j < table.entries.size(); ++j)
        if (table.entries[i].name == table.entries[j].name) std::abort();  // names are unique
  });
  return 0;
}
