// The header compiled as C++ (and linked): extern "C" and the macros must work there too.
#include "pan_offline.h"

#include <cstdio>
#include <cstring>
#include <string>

int main() {
    std::string version = pan_version();
    if (version != PAN_OFFLINE_VERSION) return 1;
    int64_t id = 0;
    int32_t rc = pan_offline_download(nullptr, "{}", &id);
    if (rc != PAN_ERR_NULL_ARGUMENT || std::strstr(pan_last_error_message(), "token") == nullptr) return 2;
    std::printf("C++ sees pan-offline %s; NULL token -> %d (%s)\n", version.c_str(), rc, pan_strerror(rc));
    return 0;
}
