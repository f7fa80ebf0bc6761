#pragma once
// The vvae subcommands, one registration function each (the command objects live as long as
// the program).

#include <CLI/CLI.hpp>

namespace vvae::cli {

void add_encode_command(CLI::App& app);       // cmd_codec.cpp
void add_decode_command(CLI::App& app);       // cmd_codec.cpp
void add_convert_command(CLI::App& app);      // cmd_codec.cpp
void add_reconstruct_command(CLI::App& app);  // cmd_reconstruct.cpp
void add_info_command(CLI::App& app);         // cmd_model.cpp
void add_compare_command(CLI::App& app);      // cmd_model.cpp

}  // namespace vvae::cli
