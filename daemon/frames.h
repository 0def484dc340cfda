/* Where frames from the transport go: the IKE and ESP layers' entry points. */
#ifndef IKETCP_FRAMES_H
#define IKETCP_FRAMES_H

#include "transport/transport.h"

extern const struct transport_handlers frame_handlers;

#endif
