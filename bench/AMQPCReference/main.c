/*
 * The reference loop for the benchmark: the same broker work as the Swift AMQP module, in
 * plain C on librabbitmq, so the two rates can be compared side by side in one run.
 *
 *   AMQPCReference publish HOST PORT QUEUE COUNT WINDOW BODY_BYTES
 *       persistent publishes to QUEUE with publisher confirms, at most WINDOW unconfirmed
 *   AMQPCReference consume HOST PORT QUEUE COUNT PREFETCH
 *       consume COUNT messages with basic.qos PREFETCH, acking each one
 *
 * Prints one line: "<messages> <seconds>".
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die_reply(amqp_rpc_reply_t r, const char *what) {
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return;
    fprintf(stderr, "%s failed (reply type %d, library error %d)\n", what, r.reply_type, r.library_error);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s publish|consume HOST PORT QUEUE COUNT WINDOW|PREFETCH [BODY_BYTES]\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1], *host = argv[2], *queue = argv[4];
    int port = atoi(argv[3]);
    long count = atol(argv[5]);
    int window = atoi(argv[6]);
    int body_bytes = argc > 7 ? atoi(argv[7]) : 400;

    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(conn);
    if (amqp_socket_open(socket, host, port) != AMQP_STATUS_OK) {
        fprintf(stderr, "cannot connect to %s:%d\n", host, port);
        return 1;
    }
    die_reply(amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login");
    amqp_channel_open(conn, 1);
    die_reply(amqp_get_rpc_reply(conn), "channel.open");

    double start = now();
    if (strcmp(mode, "publish") == 0) {
        amqp_confirm_select(conn, 1);
        die_reply(amqp_get_rpc_reply(conn), "confirm.select");
        char *body = malloc(body_bytes);
        memset(body, 'x', body_bytes);
        amqp_basic_properties_t props;
        props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
        props.content_type = amqp_cstring_bytes("application/json");
        props.delivery_mode = 2;
        char id[64];
        unsigned char *confirmed = calloc(count + 2, 1);
        long sent = 0, done = 0, lowest = 1;
        while (done < count) {
            while (sent < count && sent - done < window) {
                snprintf(id, sizeof id, "c-%ld", sent);
                props.message_id = amqp_cstring_bytes(id);
                amqp_bytes_t b = {(size_t)body_bytes, body};
                if (amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &props, b) < 0) {
                    fprintf(stderr, "publish failed\n");
                    return 1;
                }
                sent++;
            }
            amqp_frame_t frame;
            if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK) {
                fprintf(stderr, "lost the connection\n");
                return 1;
            }
            if (frame.frame_type != AMQP_FRAME_METHOD) continue;
            if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
                amqp_basic_ack_t *ack = frame.payload.method.decoded;
                long tag = (long)ack->delivery_tag;
                long from = ack->multiple ? lowest : tag;
                for (long t = from; t <= tag; t++) {
                    if (!confirmed[t]) { confirmed[t] = 1; done++; }
                }
                while (lowest <= count && confirmed[lowest]) lowest++;
            } else if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
                fprintf(stderr, "the broker nacked a publish\n");
                return 1;
            }
            amqp_maybe_release_buffers(conn);
        }
    } else {
        amqp_basic_qos(conn, 1, 0, (uint16_t)window, 0);
        die_reply(amqp_get_rpc_reply(conn), "basic.qos");
        amqp_basic_consume(conn, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
        die_reply(amqp_get_rpc_reply(conn), "basic.consume");
        for (long received = 0; received < count; received++) {
            amqp_envelope_t envelope;
            amqp_maybe_release_buffers(conn);
            amqp_rpc_reply_t r = amqp_consume_message(conn, &envelope, NULL, 0);
            die_reply(r, "consume");
            amqp_basic_ack(conn, 1, envelope.delivery_tag, 0);
            amqp_destroy_envelope(&envelope);
        }
    }
    double seconds = now() - start;
    printf("%ld %.6f\n", count, seconds);
    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    return 0;
}
