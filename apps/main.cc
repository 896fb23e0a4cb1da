// k2gym: the one binary. Everything is in the commands (apps/cmd_*.cc).
#include "apps/cli.h"

int main(int argc, char** argv) { return k2::app::Main(argc, argv); }
