#ifndef CAMQP_SHIM_H
#define CAMQP_SHIM_H

#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/tcp_socket.h>
#else
#include <amqp.h>
#include <amqp_tcp_socket.h>
#endif

/* amqp_login() is C-variadic (the SASL arguments), which Swift cannot call. */
static inline amqp_rpc_reply_t CAMQP_login_plain(amqp_connection_state_t state, const char *vhost,
                                                 int channel_max, int frame_max, int heartbeat,
                                                 const char *user, const char *password) {
    return amqp_login(state, vhost, channel_max, frame_max, heartbeat, AMQP_SASL_METHOD_PLAIN,
                      user, password);
}

#endif
