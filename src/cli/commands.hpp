#pragma once
// Sub-commands of the `dictlearn` program that live outside main.cpp. Each takes the
// arguments after the command name, runs on every rank and returns the exit status; errors
// agreed across ranks are thrown as AgreedError (main prints them once, from rank 0).
#include <string>
#include <vector>

#include "dictlearn/parallel/communicator.hpp"

namespace dictlearn::cli {

/// `dictlearn classify`: multinomial logistic regression (l2) on sparse codes or raw data.
int run_classify(const Communicator& comm, const std::vector<std::string>& args);
/// The --help text of `dictlearn classify` (rank 0 prints it).
extern const char* const kClassifyHelp;

/// `dictlearn evaluate`: compression error at a fixed number of coefficients per sample.
int run_evaluate(const Communicator& comm, const std::vector<std::string>& args);
extern const char* const kEvaluateHelp;

}  // namespace dictlearn::cli
