#pragma once
// Sub-commands of the `dictlearn` program that live outside main.cpp. Each takes the
// arguments after the command name, runs on every rank and returns the exit status; errors
// agreed across ranks are thrown as AgreedError (main prints them once, from rank 0).
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "dictlearn/io/dataset_reader.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/prior/generative_prior.hpp"

namespace dictlearn::cli {

/// The `--key value` (or `--key=value`) pairs of a sub-command whose options all take a
/// value, in order. Throws Error on a stray word or a key without its value.
std::vector<std::pair<std::string, std::string>> option_pairs(
    const std::vector<std::string>& arguments, const std::string& command);
/// A finite number / an integer >= least; Error naming `key` otherwise.
double parse_real(const std::string& key, const std::string& text);
long long parse_integer(const std::string& key, const std::string& text, long long least);

/// Overwrites `decode` with the decode-* settings recorded as attributes of a generative-prior
/// model, except those for which given("decode-...") is true (set on the command line).
void apply_recorded_decode(const DatasetReader& model, DecodeOptions& decode,
                           const std::function<bool(const std::string&)>& given);

/// `dictlearn classify`: multinomial logistic regression (l2) on sparse codes or raw data.
int run_classify(const Communicator& comm, const std::vector<std::string>& args);
/// The --help text of `dictlearn classify` (rank 0 prints it).
extern const char* const kClassifyHelp;

/// `dictlearn evaluate`: compression error at a fixed number of coefficients per sample.
int run_evaluate(const Communicator& comm, const std::vector<std::string>& args);
extern const char* const kEvaluateHelp;

}  // namespace dictlearn::cli
